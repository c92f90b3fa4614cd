import os
import subprocess
import sys

import pytest

from renewlm.errors import ConfigError, StoreError
from renewlm.lock import LockedError, hostname
from renewlm.store import MAX_NAME_BYTES, Store, check_output, resolve_root


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


@pytest.mark.parametrize("name, says", [
    ("ｖ1", "reads as 'v1' but is written with other characters; write 'v1'"),  # full-width v
    ("bаse", "mixes Cyrillic and Latin letters"),  # a Cyrillic а among Latin letters
])
def test_names_that_only_look_like_plain_ones_are_refused(tmp_path, name, says):
    with pytest.raises(StoreError, match=says):
        Store(tmp_path).path("versions", name)
    Store(tmp_path).path("versions", "медицина")  # one alphabet, another than Latin: a name like any other


def test_a_new_name_that_differs_from_an_entry_only_in_case_is_refused(tmp_path):
    store = Store(tmp_path)
    with store.staging("versions", "v1"):
        pass
    with pytest.raises(StoreError, match="'V1' reads like the existing 'v1'.*use 'v1' itself"):
        with store.staging("versions", "V1"):
            pass
    assert store.names("versions") == ["v1"]
    with store.staging("versions", "v1", overwrite=True):  # the same name is that entry, not a look-alike
        pass


def test_a_store_that_is_a_file_is_refused_not_read_as_empty(tmp_path, monkeypatch, cli):
    (tmp_path / "file").write_text("not a store")
    with pytest.raises(StoreError, match="is a file, not a folder; point --store .* at a folder"):
        Store(tmp_path / "file")
    monkeypatch.setenv("RENEWLM_STORE", str(tmp_path / "file"))
    for args in (("versions",), ("prepare", "c", "--input", tmp_path / "file", "--tokenizer", "tok")):
        code, out, err = cli(*args)
        assert code == 2 and err == f"error: the store {tmp_path / 'file'} is a file, not a folder; point --store (or $RENEWLM_STORE) at a folder, which renewlm makes when it first writes\n"


def test_outputs_outside_the_store_make_at_most_one_folder(tmp_path):
    assert check_output(tmp_path / "new" / "report.html", "--out") == tmp_path / "new" / "report.html"
    assert check_output(tmp_path / "export", "--to", folder=True) == tmp_path / "export"
    for path, option, folder, says in (
        (tmp_path / "a" / "b" / "report.html", "--out", False, "neither .*/a/b nor the folder above it exists"),
        (tmp_path / "a" / "b", "--to", True, "neither .*/a/b nor the folder above it exists"),
        (tmp_path / "f.txt", "--emit", True, "is a file; give a folder there"),
        (tmp_path / "f.txt" / "plot.png", "--plot", False, "f.txt is a file, not a folder"),
    ):
        (tmp_path / "f.txt").write_text("")
        with pytest.raises(ConfigError, match=f"^{option} .*{says}"):
            check_output(path, option, folder=folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
