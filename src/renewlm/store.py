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
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from renewlm.errors import FULL, ConfigError, StoreError, disk_error, disk_errors
from renewlm.lock import Lock, temporary_name, writer_gone

DEFAULT_STORE = "renewlm-store"
STORE_ENV = "RENEWLM_STORE"
KINDS = {"tokenizers": "tokenizer", "corpora": "corpus", "versions": "version", "runs": "run", "sweeps": "sweep"}
_TMP_PREFIX = ".tmp-"
# Temporary names add up to 94 bytes to a name (`.tmp-old-NAME@HOST-PID-XXXXXXXX`, a 64-byte host,
# a 10-digit pid), and a file name has at most 255 bytes: 128 leaves room for suffixes too.
MAX_NAME_BYTES = 128
# Alphabets with letters that look like each other's (Latin `a`, Cyrillic `а`, Greek `α`): a name uses one.
_LOOKALIKE_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK"}


def resolve_root(store: str | os.PathLike | None = None) -> Path:
    """The store folder: the argument, else $RENEWLM_STORE, else ./renewlm-store."""
    if store is None or str(store) == "":
        store = os.environ.get(STORE_ENV) or DEFAULT_STORE
    return Path(store).expanduser().absolute()


class Store:
    """Paths into the store, and the one way to write an entry (`staging`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = resolve_root(root)
        if self.root.exists() and not self.root.is_dir():  # else every list is empty and every lookup fails oddly
            raise StoreError(
                f"the store {self.root} is a file, not a folder; point --store (or ${STORE_ENV}) at a folder, "
                f"which renewlm makes when it first writes"
            )

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

    def check_new(self, kind: str, name: str) -> None:
        """Refuse a name for a new entry that reads like another entry of its kind (`V1` beside `v1`:
        one folder on a case-insensitive file system; `ｖ1`, see `check_name`)."""
        check_name(name, KINDS[kind])
        key = name_key(name)
        same = [n for n in self.names(kind) if n != name and name_key(n) == key]
        if same:
            raise StoreError(
                f"{KINDS[kind]} name {name!r} reads like the existing {same[0]!r} in {self.root} (they differ only in "
                f"case or in look-alike characters); use {same[0]!r} itself or choose a clearly different name"
            )

    @contextmanager
    def staging(self, kind: str, name: str, overwrite: bool = False, needed_bytes: int | None = None) -> Iterator[Path]:
        """Yield an empty temporary folder; on success it becomes entry `name`, on any error it is removed.

        With `overwrite`, an existing entry is replaced only after the new one is complete. A full or
        read-only file system is told in one sentence (`needed_bytes`: what the entry will take, if known).
        """
        self.check_new(kind, name)
        final = self.path(kind, name)
        what = f"{KINDS[kind]} {name!r}"
        with disk_errors(what=what, where=final.parent):
            final.parent.mkdir(parents=True, exist_ok=True)
        with self.lock(kind, name):
            if final.exists() and not overwrite:
                raise StoreError(
                    f"{kind} entry {name!r} already exists in {self.root}; "
                    f"pass --overwrite to replace it or choose another name"
                )
            clean_stale(final.parent)
            tmp = final.parent / temporary_name(name)
            try:
                tmp.mkdir()
                yield tmp
                replace_dir(tmp, final)
            except BaseException as e:
                full = isinstance(e, OSError) and e.errno in FULL  # only a full disk's sentence says what was written
                written = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file()) if full else 0
                shutil.rmtree(tmp, ignore_errors=True)
                if (error := disk_error(e, needed_bytes, what, final.parent, written)) is not None:
                    raise error from None
                raise

    def lock(self, kind: str, name: str, about: dict | None = None) -> Lock:
        """The lock of entry `name` of `kind`: `with store.lock("runs", name):` while writing it (`about`: see Lock)."""
        self.path(kind, name)
        return Lock(self.root / kind / f".lock-{name}", what=f"{KINDS[kind]} {name!r} in {self.root}", about=about)


def check_name(name: str, what: str = "entry") -> None:
    """Store names become folder names: letters, digits, '.', '_', '-' only, at most MAX_NAME_BYTES,
    written in one form (NFKC) and without mixing look-alike alphabets."""
    ok = name and not name.startswith(".") and all(c.isalnum() or c in "._-" for c in name)
    if not ok:
        raise StoreError(
            f"invalid {what} name {name!r}: use letters, digits, '.', '_' and '-', not starting with '.'"
        )
    plain = unicodedata.normalize("NFKC", name)
    if plain != name:  # `ｖ1` (full-width) shows as `v1` but is another folder
        raise StoreError(f"invalid {what} name {name!r}: it reads as {plain!r} but is written with other characters; write {plain!r}")
    scripts = sorted({unicodedata.name(c, "?").split()[0] for c in name if c.isalpha()} & _LOOKALIKE_SCRIPTS)
    if len(scripts) > 1:  # `vаl` with a Cyrillic `а` shows as `val`
        raise StoreError(
            f"invalid {what} name {name!r}: it mixes {' and '.join(s.title() for s in scripts)} letters, which look "
            f"alike; write it in one alphabet"
        )
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        raise StoreError(
            f"invalid {what} name {name[:24]!r}... ({size} bytes): a name has at most {MAX_NAME_BYTES} bytes, "
            f"so that the store's file names built from it fit the file system; choose a shorter name"
        )


def name_key(name: str) -> str:
    """What two names that read alike share: their NFKC case-folded form."""
    return unicodedata.normalize("NFKC", name).casefold()


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


def check_output(path: str | os.PathLike, option: str, *, folder: bool = False) -> Path:
    """A file (or, with `folder`, a folder) renewlm writes outside the store, for --out, --plot, --to, --emit.

    renewlm makes one missing folder for it (the file's folder, or the folder itself), never more: a
    mistyped path would otherwise grow folders up to the root. Checked before any work is done.
    """
    path = Path(path).expanduser().absolute()
    made = path if folder else path.parent
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise ConfigError(f"{option} {path} is {kind}; give {'a folder' if folder else 'a file name'} there")
    if made.exists() and not made.is_dir():
        raise ConfigError(f"{option} {path}: {made} is a file, not a folder; choose another place")
    if not made.exists() and not made.parent.is_dir():
        raise ConfigError(
            f"{option} {path}: neither {made} nor the folder above it exists (renewlm makes at most that one "
            f"folder); check the path, or create {made.parent} first"
        )
    return path


def write_png(fig, output: str | os.PathLike) -> Path:
    """Save a matplotlib figure as PNG through a temporary file and a rename (a chart is whole or absent),
    making at most the one folder `check_output` allows, and close the figure."""
    import matplotlib.pyplot as plt

    output = Path(output)
    output.parent.mkdir(exist_ok=True)
    tmp = output.with_name(f".tmp-{output.name}")
    try:
        fig.savefig(tmp, format="png")
        tmp.replace(output)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return output


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
