import errno
import json
import os
import subprocess
import sys

import pytest

from renewlm import lock as lock_module
from renewlm.lock import Lock, LockedError, holder_identity, hostname, read_holder


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def plant(path, **changes):
    """A lock file as another process would have left it."""
    holder = dict(holder_identity("run 'v2'"), **changes)
    path.write_text(json.dumps(holder))
    return holder


def test_the_lock_file_names_its_holder_and_goes_with_the_holder(tmp_path):
    path = tmp_path / ".lock-v2"
    with Lock(path, what="run 'v2'"):
        holder = read_holder(path)
        assert holder["pid"] == os.getpid() and holder["host"] == hostname() and holder["what"] == "run 'v2'"
        assert holder["command"] and holder["started"].endswith("UTC")
    assert not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the link's temporary file is gone too


def test_a_second_holder_is_refused_with_one_sentence_naming_the_first(tmp_path):
    path = tmp_path / ".lock-v2"
    with Lock(path, what="run 'v2'"):
        with pytest.raises(LockedError) as e:
            Lock(path, what="run 'v2'").acquire()
    message = str(e.value)
    assert message.startswith("run 'v2' is being written by pid") and f"kill {os.getpid()}" in message
    assert "\n" not in message


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path):
    path = tmp_path / ".lock-v2"
    plant(path, pid=dead_pid())
    with Lock(path, what="run 'v2'"):
        assert read_holder(path)["pid"] == os.getpid()
    assert not path.exists()  # and released like any other


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(tmp_path):
    path = tmp_path / ".lock-v2"
    plant(path, process_start="1")  # our pid, but the holder started at another time: it was another process
    with Lock(path, what="run 'v2'"):
        assert read_holder(path)["process_start"] != "1"


@pytest.mark.parametrize("changes", [{"host": "node-7.cluster"}, {"machine": "another-boot-or-container"}])
def test_a_lock_from_elsewhere_is_never_broken_and_the_refusal_says_what_to_remove(tmp_path, changes):
    path = tmp_path / ".lock-v2"
    planted = plant(path, pid=dead_pid(), **changes)
    with pytest.raises(LockedError, match=f"pid {planted['pid']} on .*if that process is gone, remove {path}"):
        Lock(path, what="run 'v2'").acquire()
    assert read_holder(path) == planted


def test_a_lock_file_that_names_no_holder_is_refused(tmp_path):
    path = tmp_path / ".lock-v2"
    path.write_text("")
    with pytest.raises(LockedError, match=f"does not say who holds it; .*remove {path}"):
        Lock(path, what="run 'v2'").acquire()


def test_release_leaves_alone_a_lock_that_is_no_longer_ours(tmp_path):
    path = tmp_path / ".lock-v2"
    first = Lock(path, what="run 'v2'").acquire()
    path.unlink()  # removed by hand...
    with Lock(path, what="run 'v2'"):  # ...and taken by another writer
        first.release()
        assert path.exists()


def test_without_hard_links_an_exclusive_create_does_the_same(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(lock_module.os, "link", no_links)
    path = tmp_path / ".lock-v2"
    with Lock(path, what="run 'v2'"):
        assert read_holder(path)["pid"] == os.getpid()
        with pytest.raises(LockedError, match="is being written by"):
            Lock(path, what="run 'v2'").acquire()
    assert not path.exists()
