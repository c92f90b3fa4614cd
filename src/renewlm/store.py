"""The store: one folder holding every tokenizer, corpus, version and run renewlm makes.

Nothing half-written is ever read: each entry is built under a hidden temporary name beside its
final place and renamed into place only once complete (a rename within one file system is atomic).
Temporary entries left by a killed process are removed the next time the store is opened for writing,
by a process on the same host (another node's entries may be in progress: see renewlm.lock).
Each entry being written is locked, so two writers of one name refuse each other.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from renewlm.errors import StoreError
from renewlm.lock import Lock, temporary_name, writer_gone

DEFAULT_STORE = "renewlm-store"
STORE_ENV = "RENEWLM_STORE"
KINDS = {"tokenizers": "tokenizer", "corpora": "corpus", "versions": "version", "runs": "run", "sweeps": "sweep"}
_TMP_PREFIX = ".tmp-"
# Temporary names add up to 94 bytes to a name (`.tmp-old-NAME@HOST-PID-XXXXXXXX`, a 64-byte host,
# a 10-digit pid), and a file name has at most 255 bytes: 128 leaves room for suffixes too.
MAX_NAME_BYTES = 128


def resolve_root(store: str | os.PathLike | None = None) -> Path:
    """The store folder: the argument, else $RENEWLM_STORE, else ./renewlm-store."""
    if store is None or str(store) == "":
        store = os.environ.get(STORE_ENV) or DEFAULT_STORE
    return Path(store).expanduser().absolute()


class Store:
    """Paths into the store, and the one way to write an entry (`staging`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = resolve_root(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, kind: str, name: str) -> Path:
        """Where entry `name` of `kind` (tokenizers, corpora, versions, runs) lives."""
        if kind not in KINDS:
            raise ValueError(f"unknown store kind {kind!r}")
        check_name(name, kind)
        return self.root / kind / name

    def exists(self, kind: str, name: str) -> bool:
        try:
            return self.path(kind, name).is_dir()
        except StoreError:  # not a valid store name (a folder path, say): not in the store
            return False

    def names(self, kind: str) -> list[str]:
        """Complete entries of one kind, sorted (temporary and hidden folders are skipped)."""
        folder = self.root / kind
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def require(self, kind: str, name: str) -> Path:
        """The path of an existing entry, or a StoreError that lists what exists."""
        path = self.path(kind, name)
        if not path.is_dir():
            have = ", ".join(self.names(kind)) or "none"
            raise StoreError(
                f"no {KINDS[kind]} named {name!r} in the store {self.root} (it has: {have}); "
                f"check the name or pass --store"
            )
        return path

    @contextmanager
    def staging(self, kind: str, name: str, overwrite: bool = False) -> Iterator[Path]:
        """Yield an empty temporary folder; on success it becomes entry `name`, on any error it is removed.

        With `overwrite`, an existing entry is replaced only after the new one is complete.
        """
        final = self.path(kind, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(kind, name):
            if final.exists() and not overwrite:
                raise StoreError(
                    f"{kind} entry {name!r} already exists in {self.root}; "
                    f"pass --overwrite to replace it or choose another name"
                )
            clean_stale(final.parent)
            tmp = final.parent / temporary_name(name)
            tmp.mkdir()
            try:
                yield tmp
                replace_dir(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def lock(self, kind: str, name: str) -> Lock:
        """The lock of entry `name` of `kind`: `with store.lock("runs", name):` while writing it."""
        self.path(kind, name)
        return Lock(self.root / kind / f".lock-{name}", what=f"{KINDS[kind]} {name!r} in {self.root}")


def check_name(name: str, what: str = "entry") -> None:
    """Store names become folder names: letters, digits, '.', '_', '-' only, at most MAX_NAME_BYTES."""
    ok = name and not name.startswith(".") and all(c.isalnum() or c in "._-" for c in name)
    if not ok:
        raise StoreError(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-', not starting with '.'"
        )
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        raise StoreError(
            f"invalid {what} name {name[:24]!r}... ({size} bytes): a name has at most {MAX_NAME_BYTES} bytes, "
            f"so that the store's file names built from it fit the file system; choose a shorter name"
        )


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename folder `tmp` to `final`, replacing an existing `final` only after `tmp` is complete."""
    if final.exists():
        old = final.parent / temporary_name(f"old-{final.name}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def clean_stale(folder: Path) -> None:
    """Remove temporary entries whose writer ran on this host and is gone (killed with SIGKILL, say).

    Another host's entries are left alone: its writer may be alive, and no pid here says otherwise.
    """
    for p in folder.glob(f"{_TMP_PREFIX}*"):
        if writer_gone(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def write_json(path: Path, data: object) -> None:
    """Write JSON through a temporary file and a rename, so a reader sees the old or the new file."""
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path} is missing; the store entry is incomplete, remove it and create it again")
    except json.JSONDecodeError as e:
        raise StoreError(f"{path} is not valid JSON ({e}); remove the entry and create it again")
