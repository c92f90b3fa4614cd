"""Version folders: write, read, list and remove versions.

A version is `versions/NAME/`: a Hugging Face folder (safetensors, config, generation config,
tokenizer) plus `version.json` (a `VersionRecord`, versions/record.py); a trunk version also keeps
its optimizer state in `optimizer/`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from renewlm import __version__
from renewlm.errors import StoreError
from renewlm.lock import live_holders, temporary_name
from renewlm.manifest import write_manifest
from renewlm.store import Store, read_json, write_json
from renewlm.versions.record import VersionRecord, build_record, parse_record

RECORD = "version.json"

# Beside version.json, the one record that changes after a version is written: `renewlm eval` merges into it.
EVALUATIONS = "evaluations.json"


def write_version(
    store: Store,
    name: str,
    model,
    tokenizer,
    fields: dict,
    *,
    state_dict: dict | None = None,
    overwrite: bool = False,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save `model` (or `state_dict` into its architecture) and `tokenizer` as version `name`, its record
    the `VersionRecord` of `fields` and of what the model and tokenizer say (its parameters, its positions).

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
        known = {
            "name": name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "renewlm_version": __version__,
            "model": {"architecture": type(model).__name__, **parameter_counts(model)},
            "max_positions": max_positions(model.config),
            "tokenizer_fingerprint": fingerprint(tokenizer),
            "optimizer_state": (tmp / "optimizer").is_dir(),
        }
        write_record(tmp, build_record({**known, **fields}))
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


def write_record(folder: Path, record: VersionRecord) -> None:
    """Write `record` as the version.json of `folder` (a version being staged)."""
    write_json(folder / RECORD, record.model_dump(mode="json"))


def read_version(store: Store, name: str) -> VersionRecord:
    """The record of version `name`, migrated from older fields and checked (fields it does not list kept)."""
    store.require("versions", name)
    path = store.path("versions", name) / RECORD
    return parse_record(read_json(path), str(path), name)


def read_evaluations(store: Store, name: str) -> dict:
    """A version's evaluations.json (what `renewlm eval` measured), or {} when it has never been evaluated."""
    path = store.require("versions", name) / EVALUATIONS
    return read_json(path) if path.is_file() else {}


def list_versions(store: Store) -> list[VersionRecord]:
    return [read_version(store, n) for n in store.names("versions") if (store.path("versions", n) / RECORD).is_file()]


def children(store: Store, name: str) -> list[str]:
    """Versions naming `name` among their parents (its own record, even one naming itself, is not read)."""
    return [
        n for n in store.names("versions")
        if n != name and (store.path("versions", n) / RECORD).is_file()
        and name in read_version(store, n).parent_names
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
