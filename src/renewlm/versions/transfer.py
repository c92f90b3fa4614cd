"""Import and export: Hugging Face folders into the store as root versions, and versions out as
plain folders."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from renewlm.errors import ConfigError, StoreError, disk_errors
from renewlm.lock import temporary_name
from renewlm.manifest import MANIFEST, write_manifest
from renewlm.store import Store, check_output, replace_dir
from renewlm.versions.folders import children, write_version


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
    store.check_new("versions", name)
    if store.exists("versions", name) and not overwrite:
        raise StoreError(f"versions entry {name!r} already exists in {store.root}; pass --overwrite to replace it or choose another name")
    if overwrite and (kids := children(store, name)):
        raise StoreError(
            f"--overwrite would replace version {name!r}, the parent of {', '.join(kids)}, under their lineage; "
            f"import under another name, or remove those versions first"
        )
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
    check_output(target, "--to", folder=True)
    verify_version(source, name)
    tmp = target.parent / temporary_name(f"export-{target.name}")
    files = [p for p in sorted(source.rglob("*")) if p.relative_to(source).parts[0] not in ("optimizer", MANIFEST)]
    with disk_errors(sum(p.stat().st_size for p in files if p.is_file()), f"the export of {name!r}", target.parent):
        try:
            tmp.mkdir()
            for path in files:  # not copytree: it gathers every file's OSError into one shutil.Error
                if path.is_dir():
                    (tmp / path.relative_to(source)).mkdir()
                else:
                    shutil.copy2(path, tmp / path.relative_to(source))
            write_manifest(tmp)
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # before disk_errors measures the free space
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
