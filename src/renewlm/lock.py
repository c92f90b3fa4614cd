"""Locks: one writer per run and per store entry, across processes and across nodes.

A lock is a small JSON file naming its holder (host, pid, start time, command line). It is made by
writing the holder's identity to a temporary file and hard-linking it to the lock's name: link()
fails if the name exists and is atomic on local disks and on NFS, so a lock file is always whole
(file systems without hard links fall back to O_CREAT|O_EXCL). No daemon, no fcntl lock held for the
run's life (those vanish or lie on some network file systems), so it works wherever the store does.

A lock left by a killed process is taken over only when it is certainly dead: it ran on this host
(same hostname, boot and pid namespace) and its pid is gone or now belongs to a younger process.
A lock from another host is never broken automatically; the refusal says what holds it and which
file to remove if that process is gone.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shlex
import socket
import sys
import time
import uuid
from pathlib import Path

from renewlm.errors import StoreError, disk_errors

_TMP_PREFIX = ".tmp-"


class LockedError(StoreError):
    """Another process holds the lock."""


def hostname() -> str:
    """This host's name as it appears in lock files and temporary names (no '@', at most 64 bytes)."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in ".-_") else "_" for c in socket.gethostname())
    return name[:64] or "localhost"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (Linux); tells a live holder from a reused pid."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the command name before ")" may hold spaces


def _machine() -> str:
    """This boot of this kernel, and this pid namespace: pids only mean something within both."""
    boot = _read("/proc/sys/kernel/random/boot_id") or ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{boot}/{namespace}".encode()).hexdigest()[:16]


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def temporary_name(label: str) -> str:
    """`.tmp-LABEL@HOST-PID-XXXXXXXX`: a name only this process writes, that `writer_gone` can judge."""
    return f"{_TMP_PREFIX}{label}@{hostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def writer_gone(name: str) -> bool:
    """Whether the process that made temporary `name` is certainly dead: it ran here and its pid is gone.

    Another host's entries, and names this module did not make, are never judged gone.
    """
    if not name.startswith(_TMP_PREFIX) or "@" not in name:
        return False
    parts = name.rpartition("@")[2].rsplit("-", 2)
    if len(parts) != 3 or parts[0] != hostname() or not parts[1].isdigit():
        return False
    return not pid_alive(int(parts[1]))


def holder_identity(what: str, about: dict | None = None) -> dict:
    pid = os.getpid()
    return {
        **(about or {}),
        "what": what,
        "host": hostname(),
        "pid": pid,
        "process_start": _process_start(pid),
        "machine": _machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "token": uuid.uuid4().hex,  # tells this holding apart from a later one of the same process
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python",
    }


def _holder_dead(holder: dict) -> bool:
    """Certainly dead: same host, boot and pid namespace, and the pid is gone or was reused."""
    if holder.get("host") != hostname() or holder.get("machine") != _machine():
        return False
    pid = holder.get("pid")
    if type(pid) is not int or pid <= 0:
        return False
    if not pid_alive(pid):
        return True
    start = holder.get("process_start")
    return start is not None and _process_start(pid) not in (None, start)


def read_holder(path: str | os.PathLike) -> dict | None:
    """The identity in a lock file, or None when it is gone, unreadable or not a lock."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def live_holders(folder: Path) -> list[tuple[Path, dict]]:
    """The lock files in `folder` and their holders, but for holders certainly dead (see `_holder_dead`)."""
    found = []
    for path in sorted(folder.glob(".lock-*")) if folder.is_dir() else []:
        holder = read_holder(path)
        if holder is not None and not _holder_dead(holder):
            found.append((path, holder))
    return found


class Lock:
    """`with Lock(path, what="run 'v2'"):` — refuse with LockedError while another process holds `path`.

    `about` adds fields to the holder's identity in the lock file, for others to read (a run names the
    version it trains from, so that version is not removed under it)."""

    def __init__(self, path: str | os.PathLike, what: str, about: dict | None = None):
        self.path = Path(path)
        self.what = what
        self.about = about
        self._token: str | None = None

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> Lock:
        with disk_errors(what=self.what, where=self.path.parent):  # a read-only store fails here first, in every command that writes
            return self._acquire()

    def _acquire(self) -> Lock:
        mine = holder_identity(self.what, self.about)
        body = json.dumps(mine, indent=1) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # a stale lock is broken and the race to replace it run again, a few times at most
            if self._create(body):
                self._token = mine["token"]
                return self
            holder = read_holder(self.path)
            if holder is not None and _holder_dead(holder):
                self._break(holder)
            elif self.path.exists():  # (else it was released a moment ago: try again)
                raise LockedError(self._refusal(holder))
        raise LockedError(self._refusal(read_holder(self.path)))

    def release(self) -> None:
        """Remove the lock file if it is still ours (a lock removed by hand and taken again is left alone)."""
        holder = read_holder(self.path)
        if self._token is not None and holder is not None and holder.get("token") == self._token:
            self.path.unlink(missing_ok=True)
        self._token = None

    def _create(self, body: str) -> bool:
        tmp = self.path.with_name(temporary_name(f"lock-{self.path.name}"))
        tmp.write_text(body)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        except OSError as e:
            # NFS may report a link that did succeed (its reply was lost and the call retried): the count says
            if os.stat(tmp).st_nlink != 2:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
                    raise
                return self._create_exclusive(body)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def _create_exclusive(self, body: str) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(body)
        return True

    def _break(self, holder: dict) -> None:
        """Remove the stale lock `holder`, unless another process has already replaced it."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            # Breakers of one stale lock are all on its host (only there is it judged dead): a local
            # flock orders them, and the inode check makes the loser see the winner's fresh lock.
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                replaced = os.stat(self.path).st_ino != os.fstat(fd).st_ino
            except FileNotFoundError:
                return
            if not replaced and read_holder(self.path) == holder:
                os.unlink(self.path)
        finally:
            os.close(fd)

    def _refusal(self, holder: dict | None) -> str:
        if holder is None:
            return (
                f"{self.what} is locked by {self.path}, which does not say who holds it; "
                f"if no renewlm process is writing it, remove {self.path} and retry"
            )
        who = f"pid {holder.get('pid')} on {holder.get('host')} (since {holder.get('started')}: {holder.get('command')})"
        if holder.get("host") == hostname() and holder.get("machine") == _machine():
            fix = f"wait for it to end, or stop it (kill {holder.get('pid')})"
        else:
            fix = f"wait for it to end, or, if that process is gone, remove {self.path}"
        return f"{self.what} is being written by {who}; {fix}"
