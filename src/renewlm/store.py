"""The store: one folder holding every tokenizer, corpus, version and run renewlm makes.

Nothing half-written is ever read: each entry is built under a hidden temporary name beside its
final place and renamed into place only once complete (a rename within one file system is atomic).
Temporary entries left by a killed process are removed the next time the store is opened for writing.
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

DEFAULT_STORE = "renewlm-store"
STORE_ENV = "RENEWLM_STORE"
KINDS = {"tokenizers": "tokenizer", "corpora": "corpus", "versions": "version", "runs": "run"}
_TMP_PREFIX = ".tmp-"


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
        if final.exists() and not overwrite:
            raise StoreError(
                f"{kind} entry {name!r} already exists in {self.root}; "
                f"pass --overwrite to replace it or choose another name"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(final.parent)
        tmp = final.parent / f"{_TMP_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def check_name(name: str, what: str = "entry") -> None:
    """Store names become folder names: letters, digits, '.', '_', '-' only."""
    ok = name and not name.startswith(".") and all(c.isalnum() or c in "._-" for c in name)
    if not ok:
        raise StoreError(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-', not starting with '.'"
        )


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename folder `tmp` to `final`, replacing an existing `final` only after `tmp` is complete."""
    if final.exists():
        old = final.parent / f"{_TMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def clean_stale(folder: Path) -> None:
    """Remove temporary entries whose writing process no longer runs (killed with SIGKILL, say)."""
    for p in folder.glob(f"{_TMP_PREFIX}*"):
        parts = p.name[len(_TMP_PREFIX) :].rsplit("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and _pid_alive(int(parts[1])):
            continue
        shutil.rmtree(p, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
