"""Manifests: the sha256 and size of every file of a finished checkpoint or version.

A manifest is written last, when the folder is complete, and verified before anything in the folder
is opened, so a flipped byte, a truncated file or a planted file is refused before torch or
safetensors reads it. Files are hashed on several threads (hashlib releases the GIL on large
buffers), and `verify_in_background` lets start-up build the model while a large checkpoint is hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from renewlm.errors import CorruptError

MANIFEST = "manifest.json"
_CHUNK = 8 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def _hash_all(folder: Path, names: list[str]) -> dict[str, str]:
    workers = max(1, min(8, os.cpu_count() or 1, len(names)))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(names, pool.map(lambda n: sha256_file(folder / n), names)))


def write_manifest(folder: str | os.PathLike) -> dict:
    """Hash every file under `folder` and write `manifest.json` beside them (through a rename)."""
    folder = Path(folder)
    names = _files(folder)
    digests = _hash_all(folder, names)
    manifest = {"files": {n: {"bytes": (folder / n).stat().st_size, "sha256": digests[n]} for n in names}}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return manifest


def verify_manifest(folder: str | os.PathLike, what: str) -> None:
    """Raise CorruptError, naming the file, unless every file of `folder` matches its manifest.

    `what` names the folder for the message ("checkpoint runs/x/checkpoints/step-00000010").
    A file the manifest does not list is refused too: nothing planted after the fact is loaded.
    """
    folder = Path(folder)
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        raise CorruptError(f"{what} has no {MANIFEST}, so it was never completed or was altered; remove it") from None
    except (ValueError, KeyError, TypeError):
        raise CorruptError(f"{what} has an unreadable {MANIFEST}; it was altered, remove it") from None
    present = _files(folder)
    extra = sorted(set(present) - set(listed))
    if extra:
        raise CorruptError(f"{what} holds {extra[0]!r}, which its manifest does not list (planted or altered); remove it")
    for name, entry in listed.items():
        path = folder / name
        if not path.is_file():
            raise CorruptError(f"{what} lacks {name!r}, listed in its manifest; the folder is incomplete, remove it")
        if path.stat().st_size != entry["bytes"]:
            raise CorruptError(
                f"{what}: {name!r} has {path.stat().st_size} bytes, its manifest says {entry['bytes']} (truncated or altered); remove it"
            )
    digests = _hash_all(folder, list(listed))
    for name, entry in listed.items():
        if digests[name] != entry["sha256"]:
            raise CorruptError(f"{what}: {name!r} does not match its sha256 in the manifest (altered or corrupted); remove it")


def verify_in_background(folder: str | os.PathLike, what: str) -> Future:
    """Start `verify_manifest` on a thread; `.result()` re-raises its CorruptError."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(verify_manifest, folder, what)
    pool.shutdown(wait=False)
    return future
