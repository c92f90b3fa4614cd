"""Checkpointer with a tiny torch model in one process: what a checkpoint holds, completeness, resume points."""

import json

import pytest
import torch
from safetensors import safe_open

from renewlm.manifest import MANIFEST
from renewlm.train.checkpoint import RNG_FILE, Checkpointer
from renewlm.train.optimizer_state import load_optimizer, save_optimizer
from renewlm.distributed import Dist

ONE = Dist(rank=0, world=1, local_rank=0, device=torch.device("cpu"))


def trained(seed=0, steps=2):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.LayerNorm(8))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        model(torch.randn(3, 6)).square().sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    return model, optimizer


def save_steps(folder, steps, keep=5):
    checkpointer = Checkpointer(folder, ONE, keep=keep)
    model, optimizer = trained()
    for step in steps:
        checkpointer.save(model, optimizer, {"step": step, "tokens": 10 * step})
        checkpointer.wait()
    return checkpointer, model, optimizer


def test_load_restores_model_optimizer_rng_and_train_state(tmp_path):
    checkpointer = Checkpointer(tmp_path / "checkpoints", ONE, keep=2)
    model, optimizer = trained(seed=0)
    torch.manual_seed(123)
    path = checkpointer.save(model, optimizer, {"step": 7, "tokens": 70, "next_sample": 14})
    expected_draw = torch.rand(4)
    optimizer.step()  # training goes on while the checkpoint is written: it holds the state at save()
    assert checkpointer.wait() == path
    fresh, fresh_optimizer = trained(seed=1, steps=1)
    torch.manual_seed(999)
    state = checkpointer.load(path, fresh, fresh_optimizer)
    assert state == {"step": 7, "tokens": 70, "next_sample": 14}
    assert torch.rand(4).equal(expected_draw)  # the RNG continues where the saved run was
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert a.equal(b)
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(saved[i]["exp_avg_sq"].equal(loaded[i]["exp_avg_sq"]) for i in saved)


def test_a_checkpoint_is_its_dcp_files_rng_train_state_and_a_manifest(tmp_path):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [3])
    path = checkpointer.latest()
    assert path.name == "step-00000003"
    assert sorted(p.name for p in path.iterdir()) == [".metadata", "__0_0.distcp", MANIFEST, RNG_FILE, "train.json"]
    listed = json.loads((path / MANIFEST).read_text())["files"]
    assert sorted(listed) == [".metadata", "__0_0.distcp", RNG_FILE, "train.json"]
    with safe_open(path / RNG_FILE, "pt") as f:  # plain uint8 tensors, no pickle
        assert list(f.keys()) == ["cpu.0"] and f.get_tensor("cpu.0").dtype == torch.uint8
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_completeness_comes_from_the_manifest_not_from_train_json(tmp_path):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [2])
    unfinished = tmp_path / "checkpoints" / "step-00000004"
    unfinished.mkdir()
    (unfinished / "train.json").write_text("")
    assert [p.name for p in checkpointer.complete()] == ["step-00000002"]
    path, notes = checkpointer.resume_point()
    assert path.name == "step-00000002"
    assert "step-00000004 has no manifest.json" in notes[0] and "step-00000002" in notes[-1]


def test_only_the_newest_checkpoints_are_kept_and_a_step_saved_again_is_replaced(tmp_path):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [1, 2, 3], keep=2)
    assert [p.name for p in checkpointer.complete()] == ["step-00000002", "step-00000003"]
    (checkpointer.latest() / "stray").write_text("from an earlier attempt")
    checkpointer.save(model, optimizer, {"step": 3, "tokens": 0})
    checkpointer.wait()
    assert not (checkpointer.latest() / "stray").exists()
    assert checkpointer.resume_point() == (checkpointer.latest(), [])


def test_no_checkpoint_is_no_resume_point(tmp_path):
    assert Checkpointer(tmp_path / "none", ONE, keep=2).resume_point() == (None, [])


def test_resume_point_hashes_in_the_background_while_the_caller_works(tmp_path):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [5, 6])
    pending = checkpointer.resume_point_in_background()
    model, optimizer = trained(seed=3)  # e.g. building the model meanwhile
    path, notes = pending.result()
    assert path.name == "step-00000006" and notes == []
    assert checkpointer.load(path, model, optimizer, verified=True)["step"] == 6


def test_optimizer_state_alone_round_trips_with_a_manifest_and_no_leftovers(tmp_path):
    model, optimizer = trained(seed=0)
    folder = tmp_path / "optimizer"
    folder.mkdir()
    (folder / "__7_0.distcp").write_text("a shard of an earlier, larger attempt")
    save_optimizer(folder, model, optimizer)
    assert sorted(p.name for p in folder.iterdir()) == [".metadata", "__0_0.distcp", MANIFEST]
    fresh, fresh_optimizer = trained(seed=1, steps=1)
    fresh.load_state_dict(model.state_dict())
    load_optimizer(folder, fresh, fresh_optimizer)
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(saved[i]["exp_avg"].equal(loaded[i]["exp_avg"]) for i in saved)


def test_an_optimizer_folder_without_manifest_is_not_loaded(tmp_path):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    from renewlm.errors import CorruptError

    model, optimizer = trained()
    dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(tmp_path / "opt"))
    with pytest.raises(CorruptError, match="has no manifest.json"):
        load_optimizer(tmp_path / "opt", model, optimizer)
