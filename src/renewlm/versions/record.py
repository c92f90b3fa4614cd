"""Version records: write, read, list and remove versions.

A version is `versions/NAME/`: a Hugging Face folder (safetensors, config, generation config,
tokenizer) plus `version.json`; a trunk version also keeps its optimizer state in `optimizer/`.
`version.json` lists the version's `parents` (`{name, weight}`: one for a run, several for a soup);
records written before that hold a single `parent`, read through `parent_names`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from renewlm import __version__
from renewlm.config import describe
from renewlm.errors import CorruptError, StoreError
from renewlm.lock import live_holders, temporary_name
from renewlm.manifest import write_manifest
from renewlm.store import Store, read_json, write_json

# Beside version.json, the one record that changes after a version is written: `renewlm eval` merges into it.
EVALUATIONS = "evaluations.json"


class Parent(BaseModel):
    """One parent of a version: a run's single parent (weight 1), a soup's inputs, its base (no weight)."""

    model_config = ConfigDict(extra="allow", strict=True)
    name: str
    weight: float | None = None


class VersionRecord(BaseModel):
    """The fields of `version.json` that renewlm reads, with their types. A record is checked against it
    when read, so a field of the wrong type (edited by hand) is refused in one sentence there, not as a
    TypeError in whichever command reads it first. Fields it does not list are kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True)
    name: str
    parents: list[Parent] | None = None
    parent: str | None = None  # records written before `parents`
    kind: str | None = None
    trunk: str | None = None
    paradigm: str | None = None
    created: str | None = None
    corpora: list[str] = []
    corpus_tokens: dict[str, float] | None = None
    data_tokens: float | None = None
    steps: int | None = None
    tokens: float | None = None
    flops: float | None = None
    seconds: float | None = None
    seq_len: int | None = None
    batch_tokens: int | None = None
    max_positions: int | None = None
    losses: dict[str, float] | None = None
    evaluations: dict[str, dict[str, Any]] | None = None
    schedule: dict[str, Any] | None = None
    mixture: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    tokenizer_fingerprint: str | None = None
    optimizer_state: bool | None = None


def write_version(
    store: Store,
    name: str,
    model,
    tokenizer,
    info: dict,
    *,
    state_dict: dict | None = None,
    overwrite: bool = False,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save `model` (or `state_dict` into its architecture) and `tokenizer` as version `name`.

    The tokenizer's own files are copied byte for byte where it was loaded from a folder, so a
    version carries its parent's (or its import folder's) tokenizer unchanged. The manifest is
    written last, over everything else in the folder (`extra`'s optimizer state included).
    """
    from renewlm.data.tokenizer import fingerprint, save_tokenizer
    from renewlm.model.flops import parameter_counts
    from renewlm.model.load import max_positions

    with store.staging("versions", name, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        save_tokenizer(tokenizer, tmp)
        if extra is not None:
            extra(tmp)
        meta = {
            "name": name,
            "parents": [],
            "kind": "release",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "renewlm_version": __version__,
            "model": {"architecture": type(model).__name__, **parameter_counts(model)},
            "max_positions": max_positions(model.config),
            "tokenizer_fingerprint": fingerprint(tokenizer),
            "corpora": [],
            "steps": 0,
            "tokens": 0,
            "flops": 0.0,
            "losses": {},
            "optimizer_state": (tmp / "optimizer").is_dir(),
        }
        meta.update(info)
        write_json(tmp / "version.json", meta)
        write_manifest(tmp)
    return store.path("versions", name)


def load_version(store: Store, name: str, *, trust_remote_code: bool = False):
    """(model, tokenizer) of a version, each checked against its manifest before it is opened."""
    from renewlm.data.tokenizer import load_tokenizer
    from renewlm.model.load import ModelSource, check_tokenizer, load_model

    path = store.require("versions", name)
    tokenizer = load_tokenizer(store, name)
    model, _ = load_model(ModelSource("version", name, path), trust_remote_code=trust_remote_code)
    check_tokenizer(model, tokenizer)
    return model, tokenizer


def read_version(store: Store, name: str) -> dict:
    """The record of version `name`, checked against `VersionRecord` (the dict as written, every field kept)."""
    store.require("versions", name)
    path = store.path("versions", name) / "version.json"
    meta = read_json(path)
    try:
        VersionRecord.model_validate(meta)
    except ValidationError as e:
        problems = describe(e, str(path)).replace("\n", "; ")
        raise CorruptError(
            f"{problems}; correct the field by hand, or remove the version with `renewlm rm {name} --force`"
        ) from None
    return meta


def read_evaluations(store: Store, name: str) -> dict:
    """A version's evaluations.json (what `renewlm eval` measured), or {} when it has never been evaluated."""
    path = store.require("versions", name) / EVALUATIONS
    return read_json(path) if path.is_file() else {}


def list_versions(store: Store) -> list[dict]:
    return [read_version(store, n) for n in store.names("versions") if (store.path("versions", n) / "version.json").is_file()]


def parent_names(meta: dict) -> list[str]:
    """The names of a record's parents (a soup's base included), older records' single `parent` too."""
    if "parents" in meta:
        return [p["name"] for p in meta["parents"] or [] if isinstance(p, dict) and p.get("name")]
    return [meta["parent"]] if meta.get("parent") else []


def children(store: Store, name: str) -> list[str]:
    """Versions naming `name` among their parents (its own record, even one naming itself, is not read)."""
    return [
        n for n in store.names("versions")
        if n != name and (store.path("versions", n) / "version.json").is_file()
        and name in parent_names(read_version(store, n))
    ]


def remove_version(store: Store, name: str, *, force: bool = False) -> None:
    """Remove version `name`; with `force` even when others descend from it (or its record is unreadable)."""
    path = store.require("versions", name)
    kids = [] if force else children(store, name)
    if kids:
        raise StoreError(
            f"version {name!r} is the parent of {', '.join(kids)}; remove those first or pass --force "
            f"(their lineage will then end at {name!r})"
        )
    for lock, holder in live_holders(store.root / "runs"):  # --force or not: a run reads its parent until it ends
        if holder.get("parent") == name:
            raise StoreError(
                f"version {name!r} is the parent of run {lock.name.removeprefix('.lock-')!r}, training now "
                f"(pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}); wait for it to end "
                f"or stop it (if that process is gone, delete {lock}), then remove {name!r}"
            )
    with store.lock("versions", name):  # not while the version is being written or its record updated
        doomed = path.parent / temporary_name(f"rm-{name}")
        os.rename(path, doomed)  # gone from the store at once, whatever happens to the deletion
    shutil.rmtree(doomed, ignore_errors=True)
