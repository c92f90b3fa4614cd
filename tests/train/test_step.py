"""One training step: no host sync, non-finite steps skipped on the device, losses read per window,
gradients held over the micro-batches when asked, no checkpoint at the end of a finished run, one
when its version cannot be written."""

import gc
import os
import sys

import pytest
import torch

from renewlm.errors import TrainingError
from renewlm.model import loss as loss_module
from renewlm.model.loss import Loss
from renewlm.train import loop
from renewlm.train import step as step_module
from renewlm.train import version as version_module
from renewlm.train.config import validate_run
from renewlm.train.loop import GarbageCollection, train
from renewlm.train.metrics import read_metrics
from tests.conftest import sentences
from tests.train.conftest import run_dict

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu")
TRANSFORMERS_MASKS = os.path.join("transformers", "masking_utils.py")


@pytest.mark.parametrize("document_mask", [False, True])
def test_a_training_step_never_reads_a_value_from_the_device(request, monkeypatch, document_mask):
    steps, windows = [], []
    if document_mask:  # documents shorter than a sequence: a mask to build in nearly every forward
        store = request.getfixturevalue("store")
        request.getfixturevalue("make_corpus")("prose", sentences(), val_fraction=0.1)
    else:
        store = request.getfixturevalue("train_store")

    def trapped(*args, **kwargs):
        def refuse(name):
            original = getattr(torch.Tensor, name)

            def read(tensor, *a, **k):
                # transformers' own: its mask code checks position_ids for packed sequences (one read per
                # forward, skipped when compiled whole); renewlm's code must add none.
                if sys._getframe(1).f_code.co_filename.endswith(TRANSFORMERS_MASKS):
                    return original(tensor, *a, **k)
                raise AssertionError(f"train_step read a tensor with Tensor.{name}: a host sync on CUDA")

            return read

        with pytest.MonkeyPatch.context() as traps:
            for name in READS:
                traps.setattr(torch.Tensor, name, refuse(name))
            real_step(*args, **kwargs)
        steps.append(args[1])

    real_step, real_flush = loop.train_step, loop.Pending.flush

    def counted_flush(self, stop):
        windows.append(len(self.steps))
        return real_flush(self, stop)

    monkeypatch.setattr(loop, "train_step", trapped)
    monkeypatch.setattr(loop.Pending, "flush", counted_flush)
    train(validate_run(run_dict("nosync", steps=8, log_every=4, document_mask=document_mask)), store, fresh=True)
    assert steps == list(range(8))
    # Read twice (steps 4 and 8) plus before the step-0 evaluation, where nothing is queued yet.
    assert [w for w in windows if w] == [4, 4]
    records = [r for r in read_metrics(store.path("runs", "nosync") / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in records] == list(range(1, 9))  # every step is still logged
    assert [r["tokens"] for r in records] == [256 * s for s in range(1, 9)]


def test_a_non_finite_step_leaves_weights_and_adam_state_as_they_were(train_store, monkeypatch):
    """Fused AdamW's found_inf: the step count and the moments do not move on a skipped step."""
    real = step_module.token_loss
    poisoned = {2}  # the third step's loss is NaN

    def loss(model, tokens, document_eos, z_loss):
        value = real(model, tokens, document_eos, z_loss)
        return Loss(value.cross_entropy * float("nan")) if len(steps) in poisoned else value

    steps = []
    real_step = loop.train_step

    def counting(*args, **kwargs):
        real_step(*args, **kwargs)
        steps.append(args[1])

    monkeypatch.setattr(step_module, "token_loss", loss)
    monkeypatch.setattr(loop, "train_step", counting)
    info = train(validate_run(run_dict("skip", steps=5)), train_store, fresh=True)
    assert info["skipped_steps"] == 1
    records = [r for r in read_metrics(train_store.path("runs", "skip") / "metrics.jsonl") if "loss" in r]
    assert [r["skipped_steps"] for r in records] == [0, 0, 1, 1, 1]
    assert all(torch.isfinite(t).all() for t in _weights(train_store, "skip").values())
    # The same run with step 3 left out of the data entirely ends with 4 real steps' worth of AdamW: the
    # skipped step changed nothing, so the last losses stay finite and below the first.
    assert records[-1]["loss"] < records[0]["loss"]


def _steps(store, name):
    return [r for r in read_metrics(store.path("runs", name) / "metrics.jsonl") if "loss" in r]


def test_a_z_loss_run_logs_it_beside_the_cross_entropy_and_the_head_norm(train_store, monkeypatch):
    train(validate_run(run_dict("ce", steps=4)), train_store, fresh=True)
    train(validate_run(run_dict("z", steps=4, z_loss=0.3)), train_store, fresh=True)
    off, on = _steps(train_store, "ce"), _steps(train_store, "z")
    assert all("z_loss" not in r for r in off)
    assert all(r["z_loss"] > 0 for r in on)
    # The logged loss stays the cross-entropy: step 1 (the same weights and data) logs the same loss.
    assert on[0]["loss"] == off[0]["loss"]
    assert on[-1]["z_loss"] < on[0]["z_loss"]  # the term trains: log Z is pulled towards 0
    # The head's (the tied embedding's) norm, logged every step, is the weights' before the step: the same at step 1.
    assert on[0]["head_norm"] == off[0]["head_norm"] > 0
    assert off[1]["head_norm"] != off[0]["head_norm"]
    weights_on, weights_off = _weights(train_store, "z"), _weights(train_store, "ce")
    assert any(not torch.equal(weights_on[k], weights_off[k]) for k in weights_off)

    # z_loss 0 is training without the term, bit for bit: a run whose term is removed at its source
    # (whatever its weight) ends where the z_loss 0 run ends.
    monkeypatch.setattr(loss_module, "_z_term", lambda lse, z_loss: None)
    train(validate_run(run_dict("cut", steps=4, z_loss=0.3)), train_store, fresh=True)
    cut = _weights(train_store, "cut")
    assert all(torch.equal(cut[k], weights_off[k]) for k in weights_off)
    assert [r["loss"] for r in _steps(train_store, "cut")] == [r["loss"] for r in off]


def test_the_guard_still_stops_a_run_of_non_finite_steps(train_store):
    cfg = run_dict("guard", schedule={"name": "constant", "lr": 1e30}, steps=20, log_every=5, max_bad_steps=3)
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        train(validate_run(cfg), train_store, fresh=True)
    assert not train_store.exists("versions", "guard")


def test_a_finished_run_keeps_no_checkpoint_unless_asked_but_a_failed_version_write_does(train_store, monkeypatch):
    train(validate_run(run_dict("done", steps=4, checkpoint_every=3)), train_store, fresh=True)
    assert train_store.exists("versions", "done") and not (train_store.path("runs", "done") / "checkpoints").exists()
    kept = run_dict("kept", steps=4, checkpoint_every=3, keep_checkpoints_when_finished=True)
    train(validate_run(kept), train_store, fresh=True)
    names = [p.name for p in (train_store.path("runs", "kept") / "checkpoints").glob("step-*")]
    assert names == ["step-00000003"]  # none written at the last step: the version holds it

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(version_module, "write_version", full_disk)
    with pytest.raises(OSError):
        train(validate_run(run_dict("unwritten", steps=4)), train_store, fresh=True)
    checkpoints = train_store.path("runs", "unwritten") / "checkpoints"
    assert [p.name for p in checkpoints.glob("step-*")] == ["step-00000004"]  # kept for the rerun
    monkeypatch.undo()
    info = train(validate_run(run_dict("unwritten", steps=4)), train_store)
    assert info["resumed_at_steps"] == [4] and info["steps"] == 4
    assert not checkpoints.exists()  # resumed, then finished: the checkpoint it resumed from goes too


def test_grad_sync_last_micro_batch_holds_a_sharded_models_gradients_until_the_last(train_store, monkeypatch):
    from torch.distributed.fsdp import FSDPModule

    calls = []
    real = FSDPModule.set_requires_gradient_sync

    def recorded(self, requires, *args, **kwargs):
        calls.append(requires)
        return real(self, requires, *args, **kwargs)

    monkeypatch.setattr(FSDPModule, "set_requires_gradient_sync", recorded)
    # 8 sequences a step in micro-batches of 2: 4 micro-batches, reduced after the 4th only.
    train(validate_run(run_dict("held", steps=2, precision="bf16", grad_sync="last_micro_batch")), train_store, fresh=True)
    assert calls == [False, False, False, True] * 2
    calls.clear()
    train(validate_run(run_dict("plain", steps=2, grad_sync="last_micro_batch")), train_store, fresh=True)
    assert calls == []  # fp32 in one process is not sharded: nothing to hold


def test_garbage_collection_is_off_during_training_and_restored_after():
    assert gc.isenabled()
    collector = GarbageCollection(every=2)
    assert not gc.isenabled()
    collector.step(2)
    collector.close()
    assert gc.isenabled()


def _weights(store, name):
    from safetensors.torch import load_file

    return load_file(store.path("versions", name) / "model.safetensors")
