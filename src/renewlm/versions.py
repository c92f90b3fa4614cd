"""Versions: models in the store, their lineage, and the ledger of what each one cost.

A version is `versions/NAME/`: a Hugging Face folder (safetensors, config, generation config,
tokenizer) plus `version.json`; a trunk version also keeps its optimizer state in `optimizer/`.
The ledger is the tokens and FLOPs of every run along a version's lineage.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from renewlm import __version__
from renewlm.errors import StoreError
from renewlm.store import Store, read_json, replace_dir, write_json


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
    """Save `model` (or `state_dict` into its architecture) and `tokenizer` as version `name`."""
    from renewlm.data.tokenizer import fingerprint
    from renewlm.model.flops import parameter_counts

    with store.staging("versions", name, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        meta = {
            "name": name,
            "parent": None,
            "kind": "release",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "renewlm_version": __version__,
            "model": {"architecture": type(model).__name__, **parameter_counts(model)},
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
    return store.path("versions", name)


def read_version(store: Store, name: str) -> dict:
    store.require("versions", name)
    return read_json(store.path("versions", name) / "version.json")


def list_versions(store: Store) -> list[dict]:
    return [read_version(store, n) for n in store.names("versions") if (store.path("versions", n) / "version.json").is_file()]


def lineage(store: Store, name: str) -> list[dict]:
    """The version and its ancestors in the store, root first."""
    chain, seen = [], set()
    current: str | None = name
    while current is not None and current not in seen:
        seen.add(current)
        if not store.exists("versions", current):
            break  # a parent outside the store (a local folder) ends the chain
        meta = read_version(store, current)
        chain.append(meta)
        current = meta.get("parent")
    return chain[::-1]


def lineage_corpora(store: Store, name: str) -> list[str]:
    """Every corpus the version and its ancestors trained on, in first-seen order."""
    names: dict[str, None] = {}
    for meta in lineage(store, name):
        names.update(dict.fromkeys(meta.get("corpora", [])))
    return list(names)


def cost(store: Store, name: str) -> dict:
    """The ledger: this version's own tokens and FLOPs, and the sum along its lineage."""
    chain = lineage(store, name)
    own = chain[-1]
    return {
        "tokens": own.get("tokens", 0),
        "flops": own.get("flops", 0.0),
        "cumulative_tokens": sum(m.get("tokens", 0) for m in chain),
        "cumulative_flops": sum(m.get("flops", 0.0) for m in chain),
        "lineage": [m["name"] for m in chain],
    }


def children(store: Store, name: str) -> list[str]:
    return [m["name"] for m in list_versions(store) if m.get("parent") == name]


def import_version(store: Store, name: str, folder: str | Path, *, trust_remote_code: bool = False, overwrite: bool = False) -> Path:
    """Bring a Hugging Face folder into the store as a root version (kind `import`)."""
    from renewlm.data.tokenizer import load_tokenizer
    from renewlm.model.load import ModelSource, check_folder, check_tokenizer, load_model

    folder = Path(folder).expanduser().absolute()
    check_folder(folder, trust_remote_code)
    tokenizer = load_tokenizer(store, str(folder))
    model, info = load_model(ModelSource("folder", str(folder), folder), trust_remote_code=trust_remote_code)
    check_tokenizer(model, tokenizer)
    return write_version(
        store, name, model, tokenizer, {"kind": "import", "source": str(folder), "model_source": info}, overwrite=overwrite
    )


def export_version(store: Store, name: str, to_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a version out as a plain Hugging Face folder (version.json stays beside it, as a record)."""
    source = store.require("versions", name)
    target = Path(to_dir).expanduser().absolute()
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists; pass --overwrite to replace it or choose another folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-export"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("optimizer"))
    replace_dir(tmp, target)
    return target


def remove_version(store: Store, name: str, *, force: bool = False) -> None:
    path = store.require("versions", name)
    kids = children(store, name)
    if kids and not force:
        raise StoreError(
            f"version {name!r} is the parent of {', '.join(kids)}; remove those first or pass --force "
            f"(their lineage will then end at {name!r})"
        )
    doomed = path.parent / f".tmp-rm-{name}-{uuid.uuid4().hex[:8]}"
    os.rename(path, doomed)  # gone from the store at once, whatever happens to the deletion
    shutil.rmtree(doomed, ignore_errors=True)
