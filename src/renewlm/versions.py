"""Versions: models in the store, their lineage, and the ledger of what each one cost.

A version is `versions/NAME/`: a Hugging Face folder (safetensors, config, generation config,
tokenizer) plus `version.json`; a trunk version also keeps its optimizer state in `optimizer/`.
The ledger is the tokens and FLOPs of every run along a version's lineage.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from renewlm import __version__
from renewlm.errors import ConfigError, StoreError
from renewlm.lock import temporary_name
from renewlm.manifest import MANIFEST, write_manifest
from renewlm.store import Store, check_name, read_json, replace_dir, write_json


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
            "parent": None,
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


# Llama 3 §3.4: pre-training ran at 8,192 tokens, the 128k context came in a short final stage; a
# model's maximum positions overstate the sequence length most of its tokens were seen at.
PRETRAIN_SEQ_LEN_CAP = 8192


def import_version(
    store: Store,
    name: str,
    folder: str | Path,
    *,
    trust_remote_code: bool = False,
    overwrite: bool = False,
    pretrain_tokens: int | None = None,
    pretrain_seq_len: int | None = None,
    peak_lr: float | None = None,
    final_lr: float | None = None,
) -> Path:
    """Bring a Hugging Face folder into the store as a root version (kind `import`), recording what is
    known of its pre-training: tokens (and their FLOPs, for the ledger) and the schedule's LRs (for
    `update`'s defaults)."""
    from renewlm.data.tokenizer import load_tokenizer
    from renewlm.model.flops import flops_per_token
    from renewlm.model.load import ModelSource, check_folder, check_tokenizer, load_model, max_positions

    check_pretraining(pretrain_tokens, pretrain_seq_len, peak_lr, final_lr)
    check_name(name, "version")
    if store.exists("versions", name) and not overwrite:
        raise StoreError(f"versions entry {name!r} already exists in {store.root}; pass --overwrite to replace it or choose another name")
    folder = Path(folder).expanduser().absolute()
    check_folder(folder, trust_remote_code)
    tokenizer = load_tokenizer(store, str(folder))
    model, info = load_model(ModelSource("folder", str(folder), folder), trust_remote_code=trust_remote_code)
    check_tokenizer(model, tokenizer)
    record: dict = {"kind": "import", "source": str(folder), "model_source": info}
    if pretrain_tokens is not None:
        seq_len = pretrain_seq_len or min(max_positions(model.config) or PRETRAIN_SEQ_LEN_CAP, PRETRAIN_SEQ_LEN_CAP)
        record.update(tokens=pretrain_tokens, flops=flops_per_token(model.config, seq_len) * pretrain_tokens, pretrain_seq_len=seq_len)
    schedule = {"peak_lr": peak_lr, "min_lr": final_lr}
    if any(v is not None for v in schedule.values()):
        record["schedule"] = {"name": "import", **{k: v for k, v in schedule.items() if v is not None}}
    return write_version(store, name, model, tokenizer, record, overwrite=overwrite)


def check_pretraining(tokens: int | None, seq_len: int | None, peak_lr: float | None, final_lr: float | None) -> None:
    if tokens is not None and tokens < 0:
        raise ConfigError(f"--pretrain-tokens {tokens} is negative; give the number of tokens the model was pre-trained on")
    if seq_len is not None and seq_len <= 0:
        raise ConfigError(f"--pretrain-seq-len {seq_len} must be a positive number of tokens")
    for flag, lr in (("--peak-lr", peak_lr), ("--final-lr", final_lr)):
        if lr is not None and not (math.isfinite(lr) and lr >= 0):
            raise ConfigError(f"{flag} {lr} must be a finite learning rate ≥ 0")
    if peak_lr is not None and peak_lr == 0:
        raise ConfigError("--peak-lr 0 cannot be a pre-training peak; give the largest learning rate the model was trained at")
    if peak_lr is not None and final_lr is not None and final_lr > peak_lr:
        raise ConfigError(f"--final-lr {final_lr} is above --peak-lr {peak_lr}; the final learning rate is the schedule's floor")


def export_version(store: Store, name: str, to_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Copy a version out as a plain Hugging Face folder (version.json stays beside it, as a record,
    with a manifest of the exported files). `overwrite` replaces only an earlier export."""
    from renewlm.model.load import verify_version

    source = store.require("versions", name)
    target = Path(to_dir).expanduser().absolute()
    check_export_target(store, target, overwrite)
    verify_version(source, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / temporary_name(f"export-{target.name}")
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("optimizer", MANIFEST))
        write_manifest(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def check_export_target(store: Store, target: Path, overwrite: bool) -> None:
    """An export may replace only a folder that an earlier export wrote, and never touch the store."""
    real, root = target.resolve(), store.root.resolve()
    if real == root or root.is_relative_to(real) or real.is_relative_to(root):
        where = "is" if real == root else ("contains" if root.is_relative_to(real) else "is inside")
        raise StoreError(f"--to {target} {where} the store {store.root}; export to a folder outside the store")
    if not target.exists() and not target.is_symlink():
        return
    if not overwrite:
        raise StoreError(f"{target} already exists; pass --overwrite to replace an earlier export or choose another folder")
    if not target.is_dir() or target.is_symlink():
        raise StoreError(f"--to {target} is not a folder renewlm exported; choose another folder")
    unexpected = _unexpected_in_export(target)
    if unexpected is not None:
        raise StoreError(
            f"--overwrite refused: {target} is not an earlier renewlm export ({unexpected}); remove it yourself or choose another folder"
        )


def _unexpected_in_export(folder: Path) -> str | None:
    """Why `folder` is not recognisably an export, or None: an export holds the version.json of a
    renewlm version and only the files its manifest lists."""
    try:
        record = json.loads((folder / "version.json").read_text())
        listed = set(json.loads((folder / MANIFEST).read_text())["files"])
    except FileNotFoundError as e:
        return f"it has no {Path(e.filename).name}"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "its version.json or manifest.json is unreadable"
    if not isinstance(record, dict) or not {"name", "renewlm_version", "kind"} <= set(record):
        return "its version.json is not a renewlm version record"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()} - {MANIFEST}
    extra = sorted(present - listed)
    return f"it holds {extra[0]!r}, which no export writes" if extra else None


def remove_version(store: Store, name: str, *, force: bool = False) -> None:
    path = store.require("versions", name)
    kids = children(store, name)
    if kids and not force:
        raise StoreError(
            f"version {name!r} is the parent of {', '.join(kids)}; remove those first or pass --force "
            f"(their lineage will then end at {name!r})"
        )
    doomed = path.parent / temporary_name(f"rm-{name}")
    os.rename(path, doomed)  # gone from the store at once, whatever happens to the deletion
    shutil.rmtree(doomed, ignore_errors=True)
