"""Bad model folders and versions: one sentence, exit 2, nothing written, and nothing unpickled."""

import json
import pickle

import pytest

from tests.conftest import tiny_model_folder


@pytest.fixture
def folder(store, tmp_path, capsys):
    """A tiny Llama folder saved as a user would, with the store's tokenizer."""
    path = tiny_model_folder(store, tmp_path / "hf", "llama")
    capsys.readouterr()  # save_pretrained's progress bar is not the command's output
    return path


class Bomb:
    """Unpickling this touches a file: proof that torch opened the pickle."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def truncate(path):
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size - 100])


def damage_header(path):
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"\xff" * 12
    weights.write_bytes(bytes(data))


def huge_header(path):
    """A header length of 200 MB, in a (sparse) file long enough to hold it: read whole, it would cost
    that much memory before safetensors refused it anyway."""
    with open(path / "model.safetensors", "r+b") as f:
        f.write((200_000_000).to_bytes(8, "little"))
        f.truncate(8 + 200_000_000 + 1024)


def invalid_json(path):
    (path / "config.json").write_text('{"model_type": "llama", "hidden_size": 16,')


def no_model_type(path):
    (path / "config.json").write_text('{"hidden_size": 16}')


def unknown_model_type(path):
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "model_type": "nonesuch"}))


def edit_config(**changes):
    def edit(path):
        config = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**config, **changes}))

    return edit


def pickled(path):
    (path / "model.safetensors").unlink()
    with open(path / "pytorch_model.bin", "wb") as f:
        pickle.dump(Bomb(path.parent / "unpickled"), f)


CASES = {
    "truncated safetensors": (truncate, "is truncated"),
    "damaged safetensors header": (damage_header, "not a readable safetensors file"),
    "safetensors header of 200 MB": (huge_header, "has a 200,000,000-byte safetensors header, over the 100,000,000 bytes"),
    "invalid config.json": (invalid_json, "is not valid JSON"),
    "config without model_type": (no_model_type, "names no model_type"),
    "unknown architecture": (unknown_model_type, "does not load as a causal language model"),
    "shape mismatch": (edit_config(intermediate_size=48), "shape differs from what config.json describes"),
    "more layers than weights": (edit_config(num_hidden_layers=2), "config.json does not match the weights (9 missing keys"),
    "pickled pytorch_model.bin": (pickled, "only pickled weights (pytorch_model.bin), which run code when opened; convert them to safetensors"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_folder_is_refused_on_import_with_one_sentence(cli, store, folder, case):
    damage, message = CASES[case]
    damage(folder)
    code, out, err = cli("import", "base", "--from", folder, "--store", store.root)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in out + err
    assert not (store.root / "versions").exists() or list((store.root / "versions").iterdir()) == []
    assert not (folder.parent / "unpickled").exists()


def test_a_pickle_beside_safetensors_is_never_opened(cli, store, folder):
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump(Bomb(folder.parent / "unpickled"), f)
    code, _, err = cli("import", "base", "--from", folder, "--store", store.root)
    assert code == 0, err
    assert not (folder.parent / "unpickled").exists()


def test_a_corrupted_version_is_refused_by_sample_and_export(cli, store, folder, tmp_path):
    assert cli("import", "base", "--from", folder, "--store", store.root)[0] == 0
    weights = store.path("versions", "base") / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    for args in (["sample", "base", "--prompt", "Hello"], ["export", "base", "--to", tmp_path / "out"]):
        code, out, err = cli(*args, "--store", store.root)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "version 'base': 'model.safetensors' does not match" in lines[0], err
        assert out == ""
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-out*"))
