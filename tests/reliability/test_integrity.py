"""Integrity: a corrupted, truncated, emptied or planted checkpoint is refused before it is loaded, and
the run falls back to the checkpoint before it, saying so (or stops with one sentence when none is left)."""

import shutil

import pytest
import yaml
from safetensors.torch import load_file

from renewlm.errors import CorruptError
from renewlm.manifest import MANIFEST
from renewlm.train.checkpoint import RNG_FILE
from renewlm.train.optimizer_state import load_optimizer, save_optimizer
from tests.train.conftest import run_dict
from tests.train.test_checkpoint import save_steps, trained


def flip_bytes(path, offsets=(40, 41, 200)):
    data = bytearray(path.read_bytes())
    for i in offsets:
        data[i % len(data)] ^= 0x5A
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


ALTERATIONS = {
    "three flipped bytes in a .distcp": lambda p: flip_bytes(p / "__0_0.distcp"),
    "a truncated .distcp": lambda p: truncate(p / "__0_0.distcp"),
    "a corrupt .metadata": lambda p: flip_bytes(p / ".metadata", (10,)),
    "a truncated rng file": lambda p: truncate(p / RNG_FILE),
    "an empty train.json": lambda p: (p / "train.json").write_text(""),
    "a planted file": lambda p: (p / "extra.pt").write_bytes(b"planted"),
    "no manifest": lambda p: (p / MANIFEST).unlink(),
}


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_an_altered_newest_checkpoint_falls_back_to_the_previous_one_saying_so(tmp_path, alteration):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [10, 20])
    ALTERATIONS[alteration](checkpointer.latest())
    path, notes = checkpointer.resume_point()
    assert path.name == "step-00000010"
    assert "step-00000020" in notes[0] and "remove it" in notes[0]
    assert notes[-1] == "resuming from the previous complete checkpoint, step-00000010, instead"
    model, optimizer = trained(seed=5)
    assert checkpointer.load(path, model, optimizer, verified=True)["step"] == 10


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_loading_an_altered_checkpoint_directly_is_refused_with_one_sentence(tmp_path, alteration):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [10])
    path = checkpointer.latest()
    ALTERATIONS[alteration](path)
    with pytest.raises(CorruptError) as e:
        checkpointer.load(path, model, optimizer)
    assert str(e.value).startswith(f"checkpoint {path}") and "\n" not in str(e.value)


def test_when_every_checkpoint_is_refused_one_sentence_says_to_start_over(tmp_path):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [10, 20])
    flip_bytes(checkpointer.complete()[0] / "__0_0.distcp")
    truncate(checkpointer.complete()[1] / RNG_FILE)
    with pytest.raises(CorruptError, match=r"no checkpoint of .* can be trusted \(2 refused; the newest: .*step-00000020.*--fresh") as e:
        checkpointer.resume_point()
    assert "\n" not in str(e.value)


def test_an_altered_optimizer_state_is_not_loaded(tmp_path):
    model, optimizer = trained()
    save_optimizer(tmp_path / "optimizer", model, optimizer)
    flip_bytes(tmp_path / "optimizer" / "__0_0.distcp")
    with pytest.raises(CorruptError, match="the optimizer state in .*'__0_0.distcp' does not match its sha256"):
        load_optimizer(tmp_path / "optimizer", model, optimizer)


def test_a_run_resumed_past_a_corrupt_checkpoint_ends_bitwise_where_an_uninterrupted_one_ends(train_store, tmp_path, cli):
    # Needs train/run.py to resume from Checkpointer.resume_point() and print its notes.
    settings = dict(steps=8, checkpoint_every=2, keep_checkpoints=2, keep_checkpoints_when_finished=True)
    whole, cut = tmp_path / "whole.yaml", tmp_path / "cut.yaml"
    whole.write_text(yaml.safe_dump(run_dict("integrity-whole", **settings)))
    cut.write_text(yaml.safe_dump(run_dict("integrity-cut", **settings)))
    store = ["--store", str(train_store.root)]
    assert cli("train", whole, "--fresh", *store)[0] == 0
    assert cli("train", cut, "--fresh", *store)[0] == 0
    # As if the run had been killed after its last checkpoint and that checkpoint then damaged on disk.
    shutil.rmtree(train_store.path("versions", "integrity-cut"))
    checkpoints = train_store.path("runs", "integrity-cut") / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-00000004", "step-00000006"]  # none at the end
    flip_bytes(checkpoints / "step-00000006" / "__0_0.distcp")
    code, out, err = cli("train", cut, *store)
    assert code == 0, err
    # Each note is one whole line, however long the store's path (the console does not wrap off a terminal).
    lines = (out + err).splitlines()
    assert any(f"{checkpoints / 'step-00000006'}: '__0_0.distcp' does not match its sha256" in line for line in lines), out + err
    assert "resuming from the previous complete checkpoint, step-00000004, instead" in lines, out + err
    a = load_file(train_store.path("versions", "integrity-whole") / "model.safetensors")
    b = load_file(train_store.path("versions", "integrity-cut") / "model.safetensors")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
