import os

import pytest

from renewlm.errors import StoreError
from renewlm.store import Store, resolve_root


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
    assert [p.name for p in (tmp_path / "corpora").iterdir()] == ["c"]
    with pytest.raises(StoreError, match="already exists.*--overwrite"):
        with store.staging("corpora", "c"):
            pass


def test_temporary_entries_of_dead_processes_are_cleaned(tmp_path):
    store = Store(tmp_path)
    dead = tmp_path / "corpora" / ".tmp-old-999999999-abcd1234"
    alive = tmp_path / "corpora" / f".tmp-busy-{os.getpid()}-abcd1234"
    dead.mkdir(parents=True)
    alive.mkdir()
    with store.staging("corpora", "new"):
        pass
    assert not dead.exists() and alive.exists()
    assert store.names("corpora") == ["new"]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "sp ace", "../up"])
def test_invalid_names(tmp_path, name):
    with pytest.raises(StoreError, match="invalid"):
        Store(tmp_path).path("versions", name)
    assert not Store(tmp_path).exists("versions", name)
