"""The moving average of the weights (`ema`): its arithmetic, a skipped step, its version, resume and world size."""

import json
import signal

import pytest
import torch
from torch import nn

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.ema import EMA
from renewlm.train.loop import train
from tests.train.conftest import run_dict
from tests.train.test_resume import finish, renewlm, wait_for, weights, write_run


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _step(model, optimizer, found_inf: float) -> None:
    loss = model(torch.randn(16, 4)).pow(2).mean()
    loss.backward()
    optimizer.found_inf = torch.tensor(found_inf)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def test_the_average_matches_one_computed_by_hand_and_a_skipped_step_leaves_it_unchanged():
    model, decay = _model(), 0.9
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    ema = EMA(model, decay)
    by_hand = [p.detach().clone() for p in model.parameters()]
    for step in range(5):
        skipped = step == 2
        _step(model, optimizer, 1.0 if skipped else 0.0)
        before = [t.clone() for t in ema.average]
        ema.update(step, optimizer.found_inf)
        if skipped:  # fused AdamW left the weights as they were, and the average stays too
            assert all(a.equal(b) for a, b in zip(ema.average, before))
            continue
        by_hand = [decay * h + (1 - decay) * p.detach() for h, p in zip(by_hand, model.parameters())]
    for got, want in zip(ema.average, by_hand):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert not any(a.equal(p) for a, p in zip(ema.average, model.parameters()))
    assert ema.bytes() == 4 * sum(p.numel() for p in model.parameters())


def test_applied_holds_the_average_inside_and_gives_the_weights_back_bit_for_bit():
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, fused=True)
    ema = EMA(model, 0.5)
    for step in range(3):
        _step(model, optimizer, 0.0)
        ema.update(step, optimizer.found_inf)
    trained = [p.detach().clone() for p in model.parameters()]
    with ema.applied():
        assert all(p.equal(a) for p, a in zip(model.parameters(), ema.average))
    assert all(p.equal(t) for p, t in zip(model.parameters(), trained))
    restored = EMA(model, 0.5)
    restored.load_state_dict(ema.state_dict())
    assert all(a.equal(b) for a, b in zip(restored.average, ema.average))


def test_a_run_with_ema_writes_its_average_as_version_name_ema(train_store):
    info = train(validate_run(run_dict("avg", ema=0.8)), train_store, fresh=True)
    meta = json.loads((train_store.path("versions", "avg-ema") / "version.json").read_text())
    assert meta["parents"] == [{"name": "avg", "weight": 1.0}]
    assert meta["kind"] == "release" and meta["ema"] == 0.8 and meta["paradigm"] == info["paradigm"]
    assert meta["run_id"] == info["run_id"]
    assert meta["tokens"] == 0 and meta["flops"] == 0 and meta["steps"] == 0
    assert set(meta["losses"]) == {"prose"} and meta["losses"]["prose"] != info["losses"]["prose"]
    trained, averaged = weights(train_store, "avg"), weights(train_store, "avg-ema")
    assert trained.keys() == averaged.keys()
    assert any(not trained[k].equal(averaged[k]) for k in trained)


@pytest.mark.parametrize("decay", [0, 1, -0.5, 1.5])
def test_a_decay_outside_zero_to_one_is_refused(decay):
    with pytest.raises(ConfigError, match="ema"):
        validate_run(run_dict("bad", ema=decay))


def test_a_run_whose_ema_version_exists_is_refused_before_training(train_store):
    train(validate_run(run_dict("ta-ema", steps=2)), train_store, fresh=True)
    with pytest.raises(ConfigError, match=r"version 'ta-ema' already exists .* `renewlm rm ta-ema`"):
        train(validate_run(run_dict("ta", steps=2, ema=0.9)), train_store, fresh=True)
    assert not train_store.exists("versions", "ta") and not train_store.path("runs", "ta").exists()


def test_sigkill_then_rerun_ends_with_a_bitwise_equal_average(train_store, tmp_path):
    steps = dict(steps=60, checkpoint_every=10, ema=0.9)
    finish(renewlm(train_store, "train", str(write_run(tmp_path, "ema-whole", **steps)), "--fresh"))
    run = write_run(tmp_path, "ema-killed", **steps)
    proc = renewlm(train_store, "train", str(run), "--fresh")
    checkpoints = train_store.path("runs", "ema-killed") / "checkpoints"
    wait_for(lambda: checkpoints.glob("step-*/train.json"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "resuming run ema-killed from step" in finish(renewlm(train_store, "train", str(run)))
    a, b = weights(train_store, "ema-whole-ema"), weights(train_store, "ema-killed-ema")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].equal(b[key]), key


def test_two_gloo_processes_keep_the_average_one_process_keeps(train_store, tmp_path):
    finish(renewlm(train_store, "train", str(write_run(tmp_path, "e1", steps=6, ema=0.9)), "--fresh"))
    finish(renewlm(train_store, "train", str(write_run(tmp_path, "e2", steps=6, ema=0.9)), "--fresh", procs=2))
    a, b = weights(train_store, "e1-ema"), weights(train_store, "e2-ema")
    assert a.keys() == b.keys()
    for key in a:
        # gloo sums the gradients in another order than one process: after 6 steps one weight in 16,384 of the
        # average differs by 1.14e-5 (torch 2.13 CPU, the packages of 2026-12-07); a wrong average differs everywhere
        torch.testing.assert_close(b[key], a[key], atol=3e-5, rtol=0)


def test_the_ema_of_a_release_branched_off_a_trunk_names_that_trunk(train_store):
    from renewlm.train.config import validate_run as run_config
    from renewlm.updates.paradigm import run_file
    from renewlm.versions import read_version

    cfg = run_config(run_dict("ema-sw", paradigm="switch", schedule={"name": "constant", "lr": 1e-3}, steps=10,
                              decay_fraction=0.2, ema=0.9))
    run_file(cfg, train_store, fresh=True)
    release, ema = read_version(train_store, "ema-sw"), read_version(train_store, "ema-sw-ema")
    assert release.trunk == "ema-sw-trunk" and ema.trunk == "ema-sw-trunk"  # an update from either continues the trunk
