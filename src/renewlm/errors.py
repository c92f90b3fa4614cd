"""The one error hierarchy of renewlm.

Every message says what is wrong, where, and how to fix it, in one sentence. Only the CLI turns
these into an exit code (2); library callers catch `RenewError`. A write refused by a read-only or
full file system becomes a `DiskError` in one place, `disk_error`, wherever it is met.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RenewError(Exception):
    """Base of every error renewlm raises on purpose."""


class InputError(RenewError):
    """A path, file or record given by the user cannot be used."""


class ConfigError(RenewError):
    """A YAML config or a command-line value is invalid."""


class StoreError(RenewError):
    """The store lacks something asked for, or already has it."""


class CorruptError(RenewError):
    """Something in the store is truncated or altered."""


class TrainingError(RenewError):
    """A run cannot continue (repeated non-finite losses, an incompatible checkpoint)."""


class DiskError(RenewError):
    """The file system refuses a write: it is read-only, or full (or over its quota)."""


READ_ONLY = (errno.EROFS,)
FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_error(
    e: BaseException, needed_bytes: int | None = None, what: str | None = None,
    where: str | os.PathLike | None = None, written_bytes: int | None = None,
) -> DiskError | None:
    """The one sentence for a write refused by a read-only or full file system, or None for any other error.

    `what` names the thing being written; `where` the folder written to, for errors that name no file
    (a failed write() names none). Of the space: `needed_bytes` is what the write needs in all, where
    the caller knows it (an export: the version's files), else `written_bytes` what it had written
    when the disk filled (a corpus: its size is known only once tokenized).
    """
    if not isinstance(e, OSError) or e.errno not in READ_ONLY + FULL:
        return None
    written = e.filename2 or e.filename  # a copy's or a rename's OSError names its source first, the target second
    place = _shown(written) if written else Path(where).absolute() if where else None
    writing = f"{what} cannot be written: " if what else ""
    if e.errno in READ_ONLY:
        return DiskError(
            f"{writing}{place or 'the folder written to'} is on a read-only file system; remount it read-write, "
            f"or work on a writable copy (--store for the store)"
        )
    free = _free_bytes(place) if place else None
    if needed_bytes and free is not None:
        fix = f"it needs about {format_bytes(needed_bytes)} and {format_bytes(free)} is free"
        fix += f": free {format_bytes(needed_bytes - free)} more" if needed_bytes > free else ""
    elif written_bytes:
        fix = f"it needs more than the {format_bytes(written_bytes)} it had written when the device filled: free space there"
    else:
        fix = "free space there"
    full = "no space left" if e.errno == errno.ENOSPC else "the disk quota is used up"
    device = f"the device holding {place}" if place else "the device written to"
    return DiskError(f"{writing}{full} on {device}; {fix} and run the same command again")


@contextmanager
def disk_errors(
    needed_bytes: int | None = None, what: str | None = None, where: str | os.PathLike | None = None,
) -> Iterator[None]:
    """`with disk_errors():` turns a read-only or full file system met inside into its DiskError sentence."""
    try:
        yield
    except OSError as e:
        error = disk_error(e, needed_bytes, what, where)
        if error is None:
            raise
        raise error from None


def format_bytes(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} bytes"


def _shown(filename) -> Path:
    """The path to name: renewlm's temporary and lock files stand for the folder they are written in."""
    path = Path(os.fsdecode(filename)).absolute()
    ours = next((i for i, part in enumerate(path.parts) if part.startswith((".tmp-", ".lock-"))), None)
    return Path(*path.parts[:ours]) if ours else path


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):  # the nearest folder that exists (the write may have made none)
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return None
