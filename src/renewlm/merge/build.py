"""`soup`: the command's whole job as one library call, every refusal before any work.

Three shapes: a soup of the given versions with the given weights; a sweep of α·V + (1 − α)·B over
α, keeping the α with the lowest mean held-out loss; a greedy soup over several versions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from renewlm.counts import DEFAULT_EVAL_MICRO_BATCH, DEFAULT_EVAL_TOKENS
from renewlm.errors import ConfigError
from renewlm.merge import methods
from renewlm.merge.methods import LINEAR
from renewlm.merge.soup import Recipe, check_compatible, check_new_name, check_weights, open_parent, write_soup
from renewlm.store import Store



def _check_shape(m, from_: list[str], base: str | None, weights, sweep, greedy: bool, on) -> None:
    if not from_:
        raise ConfigError("--from names no version; give the versions to merge")
    names = from_ + ([base] if base else [])
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ConfigError(f"version {twice!r} is named twice in --from/--base; name each version once")
    if sweep is not None and greedy:
        raise ConfigError("--sweep and --greedy are two searches; choose one")
    if sweep is not None:
        if len(from_) != 1 or base is None or not on:
            raise ConfigError("--sweep interpolates one version with its base: give one --from V, --base B and --on CORPUS")
        if m.name not in (LINEAR, "slerp"):
            raise ConfigError(f"--sweep interpolates with --method linear or slerp, not {m.name}")
        if weights:
            raise ConfigError("--sweep chooses the weights itself; drop --weights")
        if not sweep or any(not (math.isfinite(a) and 0 <= a <= 1) for a in sweep):
            raise ConfigError(f"--sweep {','.join(map(str, sweep))}: give values of α between 0 and 1 (e.g. 0,0.25,0.5,0.75,1)")
    elif greedy:
        if len(from_) < 2 or base is not None or not on or m.name != LINEAR or weights:
            raise ConfigError(
                "--greedy builds a uniform linear soup from two or more --from versions measured --on corpora; "
                "it takes no --base (list the base in --from), --weights or other --method"
            )
    else:
        methods.check_inputs(m, from_, base)


def _sweep(recipes: dict[float, Recipe], parents, heldout, result: dict, info: dict) -> Recipe:
    """The recipe of the α with the lowest mean held-out loss; its rows go into `result` and `info`."""
    from renewlm.merge import search

    best, rows = search.sweep(search.build_model(parents[0]), recipes, heldout)
    result["sweep"], result["alpha"] = rows, best
    info["sweep"] = {"alpha": best, "rows": [{"alpha": r["alpha"], "losses": r["losses"]} for r in rows]}
    info["losses"] = _corpus_losses(next(r for r in rows if r["alpha"] == best)["losses"])
    return recipes[best]


def _greedy(m, parents, heldout, result: dict, info: dict) -> Recipe:
    """Greedy soup: the uniform average of the parents kept; its rows go into `result` and `info`."""
    from renewlm.merge import search

    def uniform(ps):
        return Recipe(list(ps), m, None, [1.0 / len(ps)] * len(ps), {})

    chosen, rows = search.greedy(search.build_model(parents[0]), parents, heldout, uniform)
    result["greedy"] = rows
    info["greedy"] = [{"version": r["version"], "alone": r["alone"], "soup": r["soup"], "added": r["added"]} for r in rows]
    info["losses"] = _corpus_losses(next(r for r in reversed(rows) if r["added"])["soup"])
    return uniform(chosen)


def make_soup(
    store: Store,
    name: str,
    from_: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    method: str = LINEAR,
    base: str | None = None,
    params: dict | None = None,
    sweep: Sequence[float] | None = None,
    greedy: bool = False,
    on: Sequence[str] | None = None,
    seq_len: int | None = None,
    eval_tokens: int = DEFAULT_EVAL_TOKENS,
    micro_batch: int = DEFAULT_EVAL_MICRO_BATCH,
) -> dict:
    """Make version `name`; returns its path, its record, and the sweep's or greedy search's rows."""
    from renewlm.merge import search
    from renewlm.merge.tensors import return_freed_tensors

    return_freed_tensors()
    from_, on = list(from_), list(on or [])
    check_new_name(store, name)
    m = methods.method(method)
    _check_shape(m, from_, base, weights, sweep, greedy, on)
    chosen_weights = None if sweep is not None or greedy else check_weights(m, from_, base, weights)
    params = methods.check_params(m, dict(params or {}))
    parents = [open_parent(store, n) for n in from_ + ([base] if base else [])]
    check_compatible(parents)
    heldout = search.open_heldout(store, on, parents[0], seq_len=seq_len, eval_tokens=eval_tokens, micro_batch=micro_batch) if on else None
    result: dict = {"sweep": None, "greedy": None, "alpha": None}
    info: dict = {"evaluation": heldout.settings()} if heldout else {}

    if sweep is not None:
        recipes = {a: Recipe(parents, m, base, check_weights(m, from_, base, [a], sweep=True), params)
                   for a in dict.fromkeys(float(a) for a in sweep)}
        recipe = _sweep(recipes, parents, heldout, result, info)
        measure = None
    elif greedy:
        recipe = _greedy(m, parents, heldout, result, info)
        measure = None
    else:
        recipe = Recipe(parents, m, base, chosen_weights, params)

        def measure(folder: Path) -> dict:
            from renewlm.model.load import ModelSource, load_model

            model, _ = load_model(ModelSource("folder", str(folder), folder))
            return _corpus_losses(search.measure(model.to(search.device()), heldout))

        measure = measure if heldout else None
    path = write_soup(store, name, recipe, info, measure=measure)
    from renewlm.versions import read_version

    return {**result, "path": path, "record": read_version(store, name)}


def _corpus_losses(losses: dict) -> dict:
    return {k: v for k, v in losses.items() if k != "mean"}
