"""Disks that refuse writes, for tests that run as root (where chmod stops nothing) without a real
read-only mount or a tiny file system: Python's own file and folder calls are wrapped, so renewlm's
handlers meet the OSError a real disk raises, at the call that would raise it.

    read_only(monkeypatch, root)               every write under `root` fails with EROFS
    full_disk(monkeypatch, root, free_bytes)   writes under `root` fail with ENOSPC past `free_bytes`;
                                               shutil.disk_usage there reports what is left
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
from pathlib import Path

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _under(root: Path, path) -> bool:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False  # a file descriptor
    return Path(os.fsdecode(path)).absolute().is_relative_to(root)


def _refuse(code: int, path) -> None:
    raise OSError(code, os.strerror(code), os.fsdecode(path))


def read_only(monkeypatch, root) -> None:
    root = Path(root).absolute()
    real_open, real_os_open = builtins.open, os.open

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _under(root, file):
            _refuse(errno.EROFS, file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and _under(root, path):
            _refuse(errno.EROFS, path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)  # pathlib's Path.open and write_text
    monkeypatch.setattr(os, "open", os_open)
    for name in ("mkdir", "link", "rename", "replace", "unlink", "rmdir", "symlink"):
        real = getattr(os, name)

        def guarded(*args, _real=real, **kwargs):
            for path in args[:2]:
                if _under(root, path):
                    _refuse(errno.EROFS, path)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, guarded)


class _Device:
    def __init__(self, root: Path, free_bytes: int):
        self.root, self.free_bytes = root, free_bytes
        self.files: set[Path] = set()

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.files if p.is_file())


class _Limited:
    """A file whose writes fail with ENOSPC once its device is full (what was written before stays)."""

    def __init__(self, file, device: _Device):
        self._file, self._device = file, device

    def write(self, data):
        size = memoryview(data).nbytes if not isinstance(data, str) else len(data.encode())
        self._file.flush()
        if self._device.used() + size > self._device.free_bytes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write(2)'s: it names no file
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __iter__(self):
        return iter(self._file)


def full_disk(monkeypatch, root, free_bytes: int) -> None:
    root = Path(root).absolute()
    device = _Device(root, free_bytes)
    real_open, real_usage = builtins.open, shutil.disk_usage

    def open_(file, mode="r", *args, **kwargs):
        opened = real_open(file, mode, *args, **kwargs)
        if not (any(c in mode for c in "wax+") and _under(root, file)):
            return opened
        path = Path(os.fsdecode(file)).absolute()
        device.files.add(path)
        return _Limited(opened, device)

    def disk_usage(path):
        usage = real_usage(path)
        if not _under(root, path):
            return usage
        return usage._replace(free=device.free_bytes - device.used())

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    monkeypatch.setattr(shutil, "_USE_CP_SENDFILE", False)  # copies go through the files' write()
