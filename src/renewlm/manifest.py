"""Manifests: the size and sha256 of every file of a finished checkpoint or version.

A manifest is written last, when the folder is complete, and verified before anything in the folder
is opened, so a flipped byte, a truncated file or a planted file is refused before torch or
safetensors reads it. `manifest.json` reads:

    {"format": 1, "piece_bytes": 67108864,
     "files": {"model.safetensors": {"bytes": 150000000, "sha256": ["<piece 0>", "<piece 1>", "<piece 2>"]}}}

Each file is hashed in pieces of `piece_bytes` (a file up to one piece has one digest, the one
`sha256sum` prints), so one 15 GB file is hashed on every core rather than on one: sha256 runs at
about 1.5-2 GB/s per core, and hashlib releases the GIL on large buffers, so plain threads scale.
`verify_in_background` lets start-up build the model while a large checkpoint is hashed
(benchmarks/verify.py measures both; docs/reliability.md has the figures).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path

from renewlm.errors import CorruptError

MANIFEST = "manifest.json"
PIECE_BYTES = 64 << 20
_FORMAT = 1
_CHUNK = 8 << 20  # read size: memory is threads × 8 MiB whatever the file size


def hash_threads() -> int:
    """Threads used to hash: every core, up to 32 (past that the disk, not sha256, is the limit)."""
    return max(1, min(32, os.cpu_count() or 1))


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 of a whole file, as `sha256sum` prints it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hash_piece(path: Path, offset: int, length: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        while length > 0:
            chunk = f.read(min(_CHUNK, length))
            if not chunk:  # shorter than its size said: shrunk while hashing
                break
            h.update(chunk)
            length -= len(chunk)
    return h.hexdigest()


def _parallel(fn: Callable, items: Sequence, threads: int) -> list:
    """`[fn(x) for x in items]` on daemon threads: an interrupted start-up never waits for hashing to end."""
    results: list = [None] * len(items)
    errors: list[BaseException] = []
    order = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while not errors:
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # re-raised in the caller's thread below
                errors.append(e)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(threads, len(items))))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return results


def _digests(folder: Path, sizes: dict[str, int], piece_bytes: int, threads: int | None) -> dict[str, list[str]]:
    pieces = [
        (name, offset, min(piece_bytes, size - offset))
        for name, size in sizes.items()
        for offset in range(0, max(size, 1), piece_bytes)
    ]
    hashed = _parallel(lambda p: _hash_piece(folder / p[0], p[1], p[2]), pieces, threads or hash_threads())
    out: dict[str, list[str]] = {name: [] for name in sizes}
    for (name, _, _), digest in zip(pieces, hashed):
        out[name].append(digest)
    return out


def _walk(folder: Path) -> tuple[dict[str, int], list[str]]:
    """Regular files under `folder` (relative name -> bytes), and anything else found (links, devices)."""
    files, odd = {}, []
    for dirpath, dirnames, filenames in os.walk(folder):  # links to folders are listed, never followed
        base = Path(dirpath)
        for name in dirnames + filenames:
            info = os.lstat(base / name)
            rel = (base / name).relative_to(folder).as_posix()
            if stat.S_ISREG(info.st_mode):
                files[rel] = info.st_size
            elif not stat.S_ISDIR(info.st_mode):
                odd.append(rel)
    files.pop(MANIFEST, None)  # only the top-level one: a nested manifest.json is a file like any other
    return files, sorted(odd)


def write_manifest(folder: str | os.PathLike, threads: int | None = None) -> dict:
    """Hash every file under `folder` and write `manifest.json` beside them (through a rename)."""
    folder = Path(folder)
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.unlink(missing_ok=True)  # left by a writer killed mid-way: not part of the folder
    files, odd = _walk(folder)
    if odd:
        raise CorruptError(f"{folder} holds {odd[0]!r}, which is not a regular file (a link or a device); remove it")
    digests = _digests(folder, files, PIECE_BYTES, threads)
    manifest = {
        "format": _FORMAT,
        "piece_bytes": PIECE_BYTES,
        "files": {name: {"bytes": files[name], "sha256": digests[name]} for name in sorted(files)},
    }
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return manifest


def _well_formed(manifest: object) -> bool:
    try:
        piece = manifest["piece_bytes"]
        if manifest["format"] != _FORMAT or type(piece) is not int or piece <= 0:
            return False
        for name, entry in manifest["files"].items():
            size, digests = entry["bytes"], entry["sha256"]
            if type(size) is not int or size < 0 or not isinstance(digests, list):
                return False
            if len(digests) != max(1, -(-size // piece)) or not all(isinstance(d, str) and len(d) == 64 for d in digests):
                return False
    except (KeyError, TypeError, AttributeError):
        return False
    return True


def read_manifest(folder: str | os.PathLike, what: str) -> dict:
    """The manifest of `folder`, checked for shape, or a CorruptError naming `what`."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptError(f"{what} has no {MANIFEST}, so it was never completed or was altered; remove it") from None
    except (ValueError, OSError) as e:
        raise CorruptError(f"{what} has an unreadable {MANIFEST} ({e}); it was altered, remove it") from None
    if not _well_formed(manifest):
        raise CorruptError(f"{what} has a malformed {MANIFEST}; it was altered, remove it")
    return manifest


def verify_manifest(
    folder: str | os.PathLike, what: str, threads: int | None = None, *,
    only: Iterable[str] | None = None, unlisted: Iterable[str] = (),
) -> dict:
    """Return the manifest, or raise CorruptError naming the first file that does not match it.

    `what` names the folder for the message ("checkpoint runs/x/checkpoints/step-00000010").
    A file the manifest does not list is refused too: nothing planted after the fact is loaded,
    except the `unlisted` names (records renewlm rewrites in place and only reads as JSON, such as a
    version's evaluations.json, and their temporaries). `only` checks just those files (those present
    or listed), for a reader that opens nothing else.
    """
    folder = Path(folder)
    manifest = read_manifest(folder, what)
    listed = manifest["files"]
    present, odd = _walk(folder)
    if only is not None:
        wanted = set(only)
        listed = {n: e for n, e in listed.items() if n in wanted}
        present = {n: b for n, b in present.items() if n in wanted}
        odd = [n for n in odd if n in wanted]
    if odd:
        raise CorruptError(f"{what} holds {odd[0]!r}, which is not a regular file (planted); remove it")
    allowed = tuple(unlisted)
    extra = sorted(
        n for n in set(present) - set(listed)
        if n not in allowed and not any(n.startswith(f".tmp-{a}-") for a in allowed)
    )
    if extra:
        raise CorruptError(f"{what} holds {extra[0]!r}, which its manifest does not list (planted or altered); remove it")
    for name, entry in listed.items():
        if name not in present:
            raise CorruptError(f"{what} lacks {name!r}, listed in its manifest; the folder is incomplete, remove it")
        if present[name] != entry["bytes"]:
            raise CorruptError(
                f"{what}: {name!r} has {present[name]} bytes where its manifest says {entry['bytes']} "
                f"(truncated or altered); remove it"
            )
    try:
        digests = _digests(folder, {n: e["bytes"] for n, e in listed.items()}, manifest["piece_bytes"], threads)
    except OSError as e:
        raise CorruptError(f"{what} cannot be read ({e}); check the file system, or remove it") from None
    for name, entry in listed.items():
        if digests[name] != entry["sha256"]:
            raise CorruptError(f"{what}: {name!r} does not match its sha256 in the manifest (altered or corrupted); remove it")
    return manifest


def verify_in_background(folder: str | os.PathLike, what: str, threads: int | None = None) -> Future:
    """Start `verify_manifest` on a daemon thread; `.result()` returns the manifest or re-raises its CorruptError."""
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            future.set_result(verify_manifest(folder, what, threads))
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=run, daemon=True, name=f"verify {what}").start()
    return future
