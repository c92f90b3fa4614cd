"""Soups: versions merged weight by weight into a new version.

Databricks Mosaic (2024, continued pre-training in practice): averaging the weights of a model
after continued pre-training with those of its base reduces forgetting, and can help the target
metric too. A soup is a version like any other: the first --from version's config and tokenizer
files byte for byte, the merged weights, and a record naming every parent and its weight.

Everything that can be refused is refused before anything is written: the name, the method and
its inputs, the weights, then each parent's manifest, architecture, tokenizer and tensors.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from renewlm import __version__
from renewlm.errors import ConfigError, InputError, StoreError
from renewlm.manifest import MANIFEST, write_manifest
from renewlm.merge import methods
from renewlm.merge.methods import LINEAR, Method
from renewlm.merge.tensors import DTYPES, TensorInfo, Weights, write_file
from renewlm.model.load import MUTABLE_RECORDS
from renewlm.store import Store, read_json
from renewlm.versions.folders import RECORD, write_record
from renewlm.versions.record import VersionRecord, build_record, parse_record


@dataclass
class Parent:
    name: str
    folder: Path
    record: VersionRecord
    config: dict
    weights: Weights


def check_new_name(store: Store, name: str) -> None:
    store.check_new("versions", name)
    if store.exists("versions", name):
        raise StoreError(f"version {name!r} already exists in {store.root}; choose another name for the soup")


def open_parent(store: Store, name: str) -> Parent:
    """A version checked against its manifest before any of its files is read."""
    from renewlm.model.load import verify_version

    folder = store.require("versions", name)
    verify_version(folder, name)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"version {name!r} has no readable config.json ({e}); it is not a model version") from None
    record = folder / RECORD
    return Parent(name, folder, parse_record(read_json(record), str(record), name), config, Weights(folder))


def check_compatible(parents: Sequence[Parent]) -> None:
    """One architecture, one tokenizer, the same tensor names with the same shapes."""
    first = parents[0]
    arch = (first.config.get("model_type"), first.config.get("architectures"))
    fingerprint = first.record.tokenizer_fingerprint
    for p in parents[1:]:
        other = (p.config.get("model_type"), p.config.get("architectures"))
        if other != arch:
            raise ConfigError(
                f"version {p.name!r} is a {other[0]} {other[1]} but {first.name!r} is a {arch[0]} {arch[1]}; "
                f"a soup merges versions of one architecture"
            )
        if fingerprint is None or p.record.tokenizer_fingerprint != fingerprint:
            raise ConfigError(
                f"versions {first.name!r} and {p.name!r} use different tokenizers (tokenizer_fingerprint in version.json); "
                f"a soup merges versions of one tokenizer"
            )
        mine, theirs = first.weights.tensors, p.weights.tensors
        if set(mine) != set(theirs):
            odd = sorted(set(mine) ^ set(theirs))[0]
            holder, lacker = (first, p) if odd in mine else (p, first)
            raise ConfigError(f"version {holder.name!r} has tensor {odd!r} and {lacker.name!r} does not; their tensors must match one for one")
        for tensor, a in mine.items():
            b = theirs[tensor]
            if a.shape != b.shape or a.floating != b.floating:
                raise ConfigError(
                    f"tensor {tensor!r} is {a.dtype} {list(a.shape)} in {first.name!r} but {b.dtype} {list(b.shape)} in "
                    f"{p.name!r}; only versions with the same shapes can be merged"
                )


def check_weights(m: Method, names: Sequence[str], base: str | None, weights: Sequence[float] | None, *, sweep: bool = False) -> list[float] | None:
    """What the merge needs from --weights: linear's coefficient for every input (the base's last,
    1 − Σ the others'), slerp's t, or mergekit's per-version weights; None where the method has none."""
    if m.weights == "none":
        if weights:
            raise ConfigError(f"method {m.name} takes no --weights")
        return None
    want = 1 if m.weights == "t" else len(names)
    if weights is None or len(weights) == 0:
        if m.weights == "t":
            return [0.5]
        if m.name == LINEAR:
            n = len(names) + (base is not None)
            return [1.0 / n] * n
        return [1.0] * len(names)
    weights = [float(w) for w in weights]
    if len(weights) != want:
        raise ConfigError(f"--weights gives {len(weights)} value(s) for {want} --from version(s); give one weight per version, in order")
    bad = next((w for w in weights if not math.isfinite(w) or w < 0), None)
    if bad is not None:
        raise ConfigError(f"--weights {bad} is not allowed; weights are finite numbers ≥ 0")
    total = sum(weights)
    if m.weights == "t" or (m.name == LINEAR and base is not None):
        # the base takes what is left: 1 − Σ weights
        if total > 1 + 1e-9:
            raise ConfigError(f"--weights sum to {total:g} with --base {base}; with a base they sum to at most 1 and the base gets the rest")
        if total == 0 and not sweep:
            raise ConfigError(f"--weights sum to 0, so the soup would be --base {base} itself; give the --from version(s) a weight")
        return [*weights, max(0.0, 1.0 - total)] if m.name == LINEAR else weights
    if total == 0:
        raise ConfigError("--weights sum to 0; give at least one version a positive weight")
    return [w / total for w in weights] if m.name == LINEAR else weights


@dataclass
class Recipe:
    """How one soup is made: its inputs (the --from versions, then the base), the method and its numbers."""

    parents: list[Parent]
    method: Method
    base: str | None
    weights: list[float] | None  # see check_weights
    params: dict

    def __post_init__(self) -> None:
        self._inputs = self.parents
        if self.method.name == LINEAR:  # a parent weighted 0 contributes nothing: not read, not a parent
            kept = [i for i, w in enumerate(self.weights) if w > 0]
            self._inputs, self._coefficients = [self.parents[i] for i in kept], [self.weights[i] for i in kept]
        self.source = self._inputs[0]  # the first parent on record: the soup's layout, config and tokenizer
        self.layout: dict[str, TensorInfo] = self.source.weights.tensors

    def tensor(self, name: str) -> torch.Tensor:
        """The merged tensor `name`, with the dtype and shape of the first parent's."""
        info = self.layout[name]
        if not info.floating:  # integer buffers are copied, and only when every input agrees
            first = self.source.weights.read(name)
            for p in self._inputs:
                if not torch.equal(first, p.weights.read(name)):
                    raise InputError(f"tensor {name!r} holds integers that differ between {self.source.name!r} and {p.name!r}; they cannot be merged")
            return first
        out_dtype = DTYPES[info.dtype]
        if self.method.name == LINEAR:
            return methods.linear((p.weights.read(name) for p in self._inputs), self._coefficients, out_dtype)
        tensors = [p.weights.read(name) for p in self.parents]
        return methods.mergekit_merge(self.method, tensors, [p.name for p in self.parents], self.base, self.weights, self.params).to(out_dtype)

    def parents_record(self) -> list[dict]:
        if self.method.name == LINEAR:
            return [{"name": p.name, "weight": w} for p, w in zip(self._inputs, self._coefficients)]
        if self.method.weights == "t":
            t = self.weights[0]
            return [{"name": self.parents[0].name, "weight": t}, {"name": self.base, "weight": 1.0 - t}]
        own = [p for p in self.parents if p.name != self.base]
        out = [{"name": p.name, "weight": w} for p, w in zip(own, self.weights or [None] * len(own))]
        return out + ([{"name": self.base, "weight": None, "role": "base"}] if self.base else [])

    def record(self, name: str) -> dict:
        src = self.source.record
        record = {
            "name": name,
            "kind": "soup",
            "parents": self.parents_record(),
            "method": self.method.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "renewlm_version": __version__,
            "model": src.model,
            "max_positions": src.max_positions,
            "document_mask": src.document_mask,  # measured as the first parent trained, by `--on` and `renewlm eval`
            "tokenizer_fingerprint": src.tokenizer_fingerprint,
            "corpora": [],
            "steps": 0,
            "tokens": 0,
            "flops": 0.0,
            "losses": {},
            "optimizer_state": False,
        }
        if self.base is not None:
            record["base"] = self.base
        if self.params:
            record["method_parameters"] = self.params
        return record


def load_into(model: nn.Module, recipe: Recipe) -> None:
    """Put the soup's weights into `model` (built from the first parent), one tensor at a time."""
    state = model.state_dict()
    unknown = [n for n in recipe.layout if n not in state]
    loaded = {state[n].data_ptr() for n in recipe.layout if n in state}
    uncovered = [n for n, t in state.items() if n not in recipe.layout and t.data_ptr() not in loaded]
    if unknown or uncovered:  # tied weights share storage with a loaded tensor and are covered by it
        example = (unknown or uncovered)[0]
        raise InputError(
            f"the weights of {recipe.source.name!r} name tensors differently from its {type(model).__name__} "
            f"(e.g. {example!r}), so soups of it cannot be evaluated in memory; merge without --on, then run `renewlm eval`"
        )
    with torch.no_grad():
        for name in recipe.layout:
            state[name].copy_(recipe.tensor(name))


def write_soup(store: Store, name: str, recipe: Recipe, info: dict, *, measure: Callable[[Path], dict] | None = None) -> Path:
    """Write the soup as version `name`: config and tokenizer files copied, weights merged tensor by
    tensor, the record, and the manifest last. `measure(folder)` may fill in the held-out losses
    from the finished weights before the record is written."""
    src = recipe.source
    needed = sum(f.stat().st_size for f in src.folder.iterdir() if f.is_file())  # the first parent's files, as copied or merged
    with store.staging("versions", name, needed_bytes=needed) as tmp, torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # mergekit's DARE and DELLA drop weights at random: the same soup twice is the same
        for f in sorted(src.folder.iterdir()):
            # The parent's own records (version.json, manifest, evaluations.json) describe the parent, not the soup.
            if f.is_file() and not f.name.startswith(".") and f.name not in (RECORD, MANIFEST, *MUTABLE_RECORDS) and f.suffix != ".safetensors":
                shutil.copyfile(f, tmp / f.name)
        for file in src.weights.files:
            layout = {n: i for n, i in recipe.layout.items() if i.file == file}
            write_file(tmp / file, layout, src.weights.metadata[file], recipe.tensor)
        record = {**recipe.record(name), **info}
        if measure is not None:
            record["losses"] = measure(tmp)
        write_record(tmp, build_record(record))
        write_manifest(tmp)
    return store.path("versions", name)
