"""Faults: a disk that fills up or a DCP failure while a checkpoint is written stops the run with one
sentence and leaves nothing half-written; SIGKILL anywhere, then a rerun, ends bitwise where an
uninterrupted run ends (slow)."""

import errno
import os
import random
import shutil
import subprocess
import sys
import time

import pytest
import torch.distributed.checkpoint.filesystem as dcp_filesystem
import yaml
from safetensors.torch import load_file
from torch.distributed.checkpoint.api import CheckpointException

from renewlm.errors import TrainingError
from renewlm.train import checkpoint as checkpoint_module
from tests.train.conftest import run_dict
from tests.train.test_checkpoint import save_steps


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


FAULTS = {
    "a DCP shard": (dcp_filesystem, "_write_item"),
    "the RNG states": (checkpoint_module, "save_file"),
    "the manifest": (checkpoint_module, "write_manifest"),
}


@pytest.mark.parametrize("where", sorted(FAULTS))
def test_a_full_disk_during_a_save_is_one_sentence_and_leaves_nothing_half_written(tmp_path, monkeypatch, where):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [10])
    monkeypatch.setattr(*FAULTS[where], disk_full)
    with pytest.raises(TrainingError) as e:
        checkpointer.save(model, optimizer, {"step": 20, "tokens": 0})
        checkpointer.wait()
    message = str(e.value)
    assert message.startswith("could not write checkpoint step-00000020") and "No space left on device" in message
    assert "free disk space and run the same command again" in message and "\n" not in message
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000010"]
    monkeypatch.undo()
    assert checkpointer.resume_point() == (tmp_path / "checkpoints" / "step-00000010", [])


def test_a_checkpoint_exception_which_is_no_exception_becomes_a_training_error(tmp_path, monkeypatch):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [10])

    def failing(*args, **kwargs):
        raise CheckpointException("save failed", {0: (RuntimeError("a collective timed out"), None)})

    monkeypatch.setattr(checkpoint_module.dcp, "async_save", failing)
    with pytest.raises(TrainingError, match=r"step-00000020 .*\(RuntimeError: a collective timed out\); .*fix the cause"):
        checkpointer.save(model, optimizer, {"step": 20, "tokens": 0})
        checkpointer.wait()
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_an_interrupt_inside_dcp_stays_an_interrupt_and_the_next_save_cleans_up(tmp_path, monkeypatch):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [10])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dcp_filesystem, "_write_item", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save(model, optimizer, {"step": 20, "tokens": 0})
        checkpointer.wait()
    monkeypatch.undo()
    checkpointer.save(model, optimizer, {"step": 30, "tokens": 0})
    checkpointer.wait()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-00000010", "step-00000030"]


def test_renewlm_train_on_a_full_disk_exits_2_with_one_line(train_store, tmp_path, monkeypatch, cli):
    run = tmp_path / "full.yaml"
    run.write_text(yaml.safe_dump(run_dict("faults-full", steps=4, checkpoint_every=2)))
    monkeypatch.setattr(dcp_filesystem, "_write_item", disk_full)
    code, out, err = cli("train", run, "--fresh", "--store", train_store.root)
    assert code == 2
    assert err.startswith("error: could not write checkpoint step-00000002") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    assert not list((train_store.path("runs", "faults-full") / "checkpoints").glob(".tmp-*"))
    assert not train_store.exists("versions", "faults-full")


def test_a_stopped_run_says_in_one_sentence_that_its_checkpoint_is_whole_and_resumes(train_store, tmp_path, monkeypatch, cli):
    from renewlm.train import loop

    run = tmp_path / "stop.yaml"
    run.write_text(yaml.safe_dump(run_dict("faults-stop", steps=4)))
    original = loop.StopSignal.__init__

    def asked_at_once(self):
        original(self)
        self.requested = True  # as if Ctrl-C (or SIGTERM) came during the first step

    monkeypatch.setattr(loop.StopSignal, "__init__", asked_at_once)
    code, out, err = cli("train", run, "--fresh", "--store", train_store.root)
    assert code == 130 and "half-written" not in out and "Traceback" not in out + err
    assert err == ("interrupted at step 1: its checkpoint is complete and nothing half-written was kept; "
                   "run the same command again to resume\n")
    assert (train_store.path("runs", "faults-stop") / "checkpoints" / "step-00000001").is_dir()
    monkeypatch.undo()
    code, out, err = cli("train", run, "--store", train_store.root)
    assert code == 0 and "resuming run faults-stop from step 1" in out + err, err


def test_an_interrupt_elsewhere_is_the_general_sentence(store, monkeypatch, cli):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("renewlm.cli.versions.list_versions", interrupted)
    assert cli("versions", "--store", store.root) == (130, "", "interrupted; nothing half-written was kept\n")


def _renewlm(store, *args):
    cmd = [sys.executable, "-m", "renewlm", *map(str, args), "--store", str(store.root)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_sigkill_at_20_random_points_then_rerun_ends_bitwise_equal(train_store, tmp_path):
    settings = dict(steps=60, checkpoint_every=3, keep_checkpoints=2)
    whole = tmp_path / "whole.yaml"
    whole.write_text(yaml.safe_dump(run_dict("kill-whole", **settings)))
    started = time.monotonic()
    out, _ = _renewlm(train_store, "train", whole, "--fresh").communicate(timeout=600)
    duration = time.monotonic() - started  # only to spread the kill points over a run's life
    expected = load_file(train_store.path("versions", "kill-whole") / "model.safetensors")
    run = tmp_path / "killed.yaml"
    run.write_text(yaml.safe_dump(run_dict("kill-many", **settings)))
    chance = random.Random(20)
    version = train_store.path("versions", "kill-many")
    kills, fresh = [], True

    def check_and_start_over():
        got = load_file(version / "model.safetensors")
        assert got.keys() == expected.keys() and all(got[k].equal(expected[k]) for k in got), kills
        shutil.rmtree(version)  # the next cycle runs the whole thing again

    while len(kills) < 20:
        proc = _renewlm(train_store, "train", run, *(["--fresh"] if fresh else []))
        delay = chance.uniform(0.2, duration)
        try:
            out, _ = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()  # SIGKILL
            proc.communicate()
            kills.append(round(delay, 2))
            fresh = version.exists()  # killed after the version was renamed into place: the run is done
            if fresh:
                check_and_start_over()
            continue
        assert proc.returncode == 0, f"after kills at {kills} s:\n{out}"
        check_and_start_over()
        fresh = True
    out, _ = _renewlm(train_store, "train", run, *(["--fresh"] if fresh else [])).communicate(timeout=600)
    check_and_start_over()
    leftovers = [p.name for p in (train_store.root / "versions").iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
