import os
import subprocess
import sys

import pytest

from renewlm.errors import StoreError
from renewlm.lock import LockedError, hostname
from renewlm.store import MAX_NAME_BYTES, Store, resolve_root


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_store_location_from_argument_environment_or_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RENEWLM_STORE", raising=False)
    assert resolve_root(None) == tmp_path / "renewlm-store"
    monkeypatch.setenv("RENEWLM_STORE", str(tmp_path / "env"))
    assert resolve_root(None) == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"


def test_staging_renames_on_success_and_leaves_nothing_on_failure(tmp_path):
    store = Store(tmp_path)
    with store.staging("corpora", "c") as tmp:
        (tmp / "f").write_text("one")
        assert not store.exists("corpora", "c")  # not visible until complete
    assert (store.path("corpora", "c") / "f").read_text() == "one"
    with pytest.raises(RuntimeError):
        with store.staging("corpora", "c", overwrite=True) as tmp:
            (tmp / "f").write_text("two")
            raise RuntimeError("failed half-way")
    assert (store.path("corpora", "c") / "f").read_text() == "one"  # the old entry survives
    assert [p.name for p in (tmp_path / "corpora").iterdir()] == ["c"]  # no temporary, no lock left
    with pytest.raises(StoreError, match="already exists.*--overwrite"):
        with store.staging("corpora", "c"):
            pass


def test_temporary_names_carry_host_and_pid(tmp_path):
    store = Store(tmp_path)
    with store.staging("corpora", "c") as tmp:
        assert tmp.name.startswith(f".tmp-c@{hostname()}-{os.getpid()}-")


def test_only_this_hosts_temporaries_of_dead_processes_are_cleaned(tmp_path):
    store = Store(tmp_path)
    folder = tmp_path / "corpora"
    dead = folder / f".tmp-old@{hostname()}-{dead_pid()}-abcd1234"
    alive = folder / f".tmp-busy@{hostname()}-{os.getpid()}-abcd1234"
    elsewhere = folder / f".tmp-remote@other-node.cluster-{dead_pid()}-abcd1234"
    unknown = folder / ".tmp-written-by-something-else"
    for p in (dead, alive, elsewhere, unknown):
        p.mkdir(parents=True)
    dead_file = folder / f".tmp-lock-.lock-x@{hostname()}-{dead_pid()}-abcd1234"
    dead_file.write_text("{}")
    with store.staging("corpora", "new"):
        pass
    assert not dead.exists() and not dead_file.exists()
    assert alive.exists() and elsewhere.exists() and unknown.exists()
    assert store.names("corpora") == ["new"]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "sp ace", "../up"])
def test_invalid_names(tmp_path, name):
    with pytest.raises(StoreError, match="invalid"):
        Store(tmp_path).path("versions", name)
    assert not Store(tmp_path).exists("versions", name)


def test_names_are_bounded_in_bytes_so_temporary_names_fit(tmp_path):
    store = Store(tmp_path)
    longest = "a" * MAX_NAME_BYTES
    with store.staging("versions", longest) as tmp:
        assert len(tmp.name.encode()) <= 255
    assert store.exists("versions", longest)
    for name in ("a" * 240, "é" * (MAX_NAME_BYTES // 2 + 1)):  # bytes, not characters
        with pytest.raises(StoreError, match=f"at most {MAX_NAME_BYTES} bytes") as e:
            store.path("runs", name)
        assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_staging_refuses_while_another_writer_holds_the_entry(tmp_path):
    store = Store(tmp_path)
    with store.lock("corpora", "c"):
        with pytest.raises(LockedError, match=f"corpus 'c'.*pid {os.getpid()} on {hostname()}"):
            with store.staging("corpora", "c"):
                pass
    assert not store.exists("corpora", "c")
    with store.staging("corpora", "c"):  # released: the next writer goes ahead
        pass
    assert store.exists("corpora", "c")
