"""Merge methods: how the tensors of one name across a soup's inputs become one tensor.

`linear` (a weighted mean) is renewlm's own, so a soup needs nothing beyond the base install and
its result does not depend on which extras are present. Every other method is mergekit's
(`pip install 'renewlm[merge]'`), called one tensor at a time through
`mergekit.merge_methods.merge_tensors`, so mergekit does the arithmetic and renewlm the streaming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, Literal

import torch

from renewlm.errors import ConfigError

LINEAR = "linear"
# passthrough copies a single input, which is not a soup.
_SKIPPED = {"passthrough"}


@dataclass(frozen=True)
class Method:
    name: str
    base: Literal["required", "optional", "ignored"]
    # what --weights gives: one weight per --from version, the interpolation t (slerp), or nothing
    weights: Literal["each", "t", "none"]
    params: dict[str, Any] = field(default_factory=dict)  # --param NAME=VALUE it accepts, with defaults (None: required)
    reference: str | None = None


_LINEAR = Method(LINEAR, "optional", "each", reference="https://arxiv.org/abs/2203.05482")


def _mergekit_methods() -> dict[str, Any] | None:
    try:
        from mergekit import merge_methods
    except ImportError:
        return None
    return {m.spec.name: m for m in merge_methods.registered_methods() if m.spec.name not in _SKIPPED | {LINEAR}}


def _describe(spec) -> Method:
    weights, params = "none", {}
    for p in spec.parameters:
        if p.name == "weight" and p.scope.value in ("non_base", "input"):
            weights = "each"
        elif p.name == "t" and p.scope.value == "shared":
            weights = "t"
        else:
            params[p.name] = None if p.required else p.default
    base = spec.contract.base.value
    return Method(spec.name, base if base in ("required", "optional") else "ignored", weights, params, spec.reference_url)


def check_inputs(m: Method, names: list[str], base: str | None) -> None:
    """Refuse a number of inputs, or a base, that the method cannot merge."""
    if base is not None and m.base == "ignored":
        raise ConfigError(f"method {m.name} takes no --base; list every version in --from")
    if base is None and m.base == "required":
        raise ConfigError(f"method {m.name} needs --base B, the model the others are measured against")
    ids = names + ([base] if base is not None else [])
    if m.name == LINEAR:
        if len(ids) < 2:
            raise ConfigError(f"a soup needs at least two models; --from {names[0]} alone is that version itself (add versions or --base)")
        return
    try:
        _mergekit_methods()[m.name].validate_inputs(ids, base)
    except ValueError as e:
        raise ConfigError(f"method {m.name} cannot merge --from {' '.join(names)}" + (f" --base {base}" if base else "") + f": {e}") from None


def available() -> list[str]:
    """Method names usable here: linear, plus mergekit's when it is installed."""
    return [LINEAR] + sorted(_mergekit_methods() or {})


def method(name: str) -> Method:
    if name == LINEAR:
        return _LINEAR
    found = _mergekit_methods()
    if found is None:
        raise ConfigError(
            f"--method {name} needs mergekit, which is not installed; install it with `pip install 'renewlm[merge]'` "
            f"(or `pip install mergekit`), or use --method linear"
        )
    if name not in found:
        raise ConfigError(f"unknown --method {name!r}; choose one of {', '.join(available())}")
    return _describe(found[name].spec)


def check_params(m: Method, params: dict[str, Any]) -> dict[str, Any]:
    """The method's extra parameters from --param, checked against what it accepts."""
    unknown = sorted(set(params) - set(m.params))
    if unknown:
        accepted = ", ".join(m.params) or "none"
        raise ConfigError(f"--param {unknown[0]} is not a parameter of method {m.name} (it accepts: {accepted})")
    missing = [k for k, default in m.params.items() if default is None and k not in params]
    if missing:
        raise ConfigError(f"method {m.name} needs --param {missing[0]}=VALUE")
    if m.name == LINEAR:
        return dict(params)
    spec = _mergekit_methods()[m.name].spec
    checked = {}
    for p in spec.parameters:
        if p.name in params:
            try:
                checked[p.name] = p.validate(params[p.name])
            except ValueError as e:  # pydantic's ValidationError is a ValueError
                first = str(e).splitlines()[-1].strip() if str(e) else "invalid"
                raise ConfigError(f"--param {p.name}={params[p.name]!r} is not valid for method {m.name} ({first})") from None
            if isinstance(checked[p.name], float) and not math.isfinite(checked[p.name]):  # mergekit takes nan, then fails mid-merge
                raise ConfigError(f"--param {p.name}={params[p.name]} is not a finite number; give e.g. --param {p.name}=0.5")
    return checked


def linear(tensors: Iterable[torch.Tensor], coefficients: list[float], out_dtype: torch.dtype) -> torch.Tensor:
    """Σ cᵢ·tᵢ over tensors taken one at a time (so only the sum and one input are in memory),
    accumulated in float64 for 32/64-bit weights (float32 for 16-bit ones) and cast to `out_dtype`.
    The coefficients sum to 1 (check_weights normalises them)."""
    acc_dtype = torch.float32 if out_dtype.itemsize < 4 else torch.float64
    acc = None
    for t, c in zip(tensors, coefficients):
        if acc is None:
            acc = torch.zeros(t.shape, dtype=acc_dtype)
        acc.add_(t.to(acc_dtype), alpha=c)
    return acc.to(out_dtype)


def mergekit_merge(m: Method, tensors: list[torch.Tensor], ids: list[str], base: str | None, weights: list[float] | None, params: dict) -> torch.Tensor:
    """mergekit's merge of the inputs' tensors of one name (`ids` name the inputs; the base, if any, is
    among them); `weights` holds one weight per non-base input, or slerp's t alone."""
    from mergekit.merge_methods import merge_tensors

    parameters = dict(params)
    if m.weights == "each":
        parameters["weight"] = dict(zip([i for i in ids if i != base], weights))
    elif m.weights == "t":
        parameters["t"] = weights[0]
    out = merge_tensors(
        tensors, _mergekit_methods()[m.name], parameters=parameters, ids=ids,
        base_index=ids.index(base) if base is not None else None, out_dtype=tensors[0].dtype,
    )
    return out.to(tensors[0].dtype)
