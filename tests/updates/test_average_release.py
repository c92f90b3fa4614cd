"""Averaged releases: a path-switching trunk's last steps averaged uniformly, written as a release with no decay run."""

import pytest
import torch
from safetensors.torch import load_file
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.updates.paradigm import run_update
from renewlm.updates.request import UpdateRequest
from renewlm.versions import cost, read_version
from tests.train.conftest import run_dict

CONSTANT = {"name": "constant", "lr": 3e-3}


def _weights(store, name):
    return load_file(store.path("versions", name) / "model.safetensors")


def test_the_averaged_release_is_the_mean_of_the_window_s_weights(train_store, tmp_path):
    keep = dict(checkpoint_every=1, keep_checkpoints=10, keep_checkpoints_when_finished=True)
    cfg = validate_run(run_dict("avt", kind="trunk", schedule=CONSTANT, steps=6, average={"release": "avr", "steps": 3}, **keep))
    info = train(cfg, train_store, fresh=True)
    # The window is steps 4..6: the weights after steps 4 and 5 are in their checkpoints, after step 6 in the trunk.
    window = []
    for step in (4, 5):
        dcp_to_torch_save(train_store.path("runs", "avt") / "checkpoints" / f"step-{step:08d}", tmp_path / f"{step}.pt")
        window.append(torch.load(tmp_path / f"{step}.pt", weights_only=True)["model"])
    window.append(_weights(train_store, "avt"))
    averaged = _weights(train_store, "avr")
    for key, tensor in averaged.items():
        by_hand = sum(w[key].float() for w in window) / 3
        torch.testing.assert_close(tensor, by_hand, atol=1e-6, rtol=0)
    assert any(not tensor.equal(window[-1][key]) for key, tensor in averaged.items())
    meta = read_version(train_store, "avr")
    assert meta.kind == "release" and meta.trunk == "avt" and meta.paradigm == "switch"
    assert [p.model_dump() for p in meta.parents] == [{"name": "avt", "weight": 1.0}]
    assert meta.averaged_steps == [4, 6] and meta.run_id == info["run_id"]
    assert meta.tokens == 0 and meta.flops == 0 and set(meta.losses) == {"prose"}


def test_a_trunk_that_keeps_an_average_also_branches_a_decay(train_store):
    """One trunk serves both kinds of release: the decay branch off an averaging trunk keeps no average of its own."""
    from renewlm.updates.switch import branch_config

    cfg = validate_run(run_dict("avb", kind="trunk", schedule=CONSTANT, steps=4, average={"release": "avb-avg", "steps": 2}))
    train(cfg, train_store, fresh=True)
    branch = branch_config("avb-dec", cfg, 0.5)
    assert branch.average is None and branch.kind == "release" and branch.load_optimizer
    train(branch, train_store, fresh=True)
    assert read_version(train_store, "avb-dec").trunk == "avb" and read_version(train_store, "avb-avg").trunk == "avb"


def test_an_averaged_update_costs_the_trunk_alone_and_a_later_update_continues_the_trunk(train_store, cli):
    if not train_store.exists("versions", "av-base"):
        train(validate_run(run_dict("av-base", steps=3)), train_store, fresh=True)
    update = ("update", "av2", "--from", "av-base", "--data", "code", "--paradigm", "switch", "--steps", "4",
              "--micro-batch", "4", "--store", train_store.root)
    code, _, err = cli(*update, "--average-window", "2")
    assert code == 2 and err.startswith("error: --average-window") and not train_store.exists("runs", "av2-trunk")
    code, out, err = cli(*update, "--release", "average", "--average-window", "2")
    assert code == 0, err
    assert f"version written: {train_store.path('versions', 'av2')}" in out.replace("\n", "")
    release, trunk = read_version(train_store, "av2"), read_version(train_store, "av2-trunk")
    assert release.trunk == "av2-trunk" and release.averaged_steps == [3, 4] and trunk.kind == "trunk"
    assert not train_store.exists("runs", "av2")  # no decay run
    ledger = cost(train_store, "av2")
    assert ledger["tokens"] == 0 and ledger["cumulative_tokens"] == trunk.tokens + read_version(train_store, "av-base").tokens
    # The next update, of either kind, continues the trunk the averaged release records.
    run_update(train_store, UpdateRequest(name="av3", parent="av2", data=["code"], paradigm="switch", decay_fraction=0.5,
                                          steps=4, micro_batch=4))
    assert [p.name for p in read_version(train_store, "av3-trunk").parents] == ["av2-trunk"]
    assert read_version(train_store, "av3").trunk == "av3-trunk"


@pytest.mark.parametrize(("overrides", "says"), [
    ({"average": {"release": "r", "steps": 2}}, "set kind: trunk"),
    ({"kind": "trunk", "schedule": CONSTANT, "steps": 4, "average": {"release": "r", "steps": 5}}, "longer than the run's 4 steps"),
    ({"kind": "trunk", "schedule": CONSTANT, "average": {"release": "r", "steps": 0}}, "average.steps"),
])
def test_an_average_the_run_cannot_keep_is_refused(overrides, says):
    with pytest.raises(ConfigError, match=says):
        validate_run(run_dict("bad", **overrides))


def test_an_averaged_release_whose_name_exists_is_refused_before_the_trunk_trains(train_store):
    if not train_store.exists("versions", "av-taken"):
        train(validate_run(run_dict("av-taken", steps=2)), train_store, fresh=True)
    cfg = validate_run(run_dict("avx", kind="trunk", schedule=CONSTANT, steps=2, average={"release": "av-taken", "steps": 1}))
    with pytest.raises(ConfigError, match="version 'av-taken' already exists"):
        train(cfg, train_store, fresh=True)
    assert not train_store.exists("versions", "avx") and not train_store.path("runs", "avx").exists()


@pytest.mark.parametrize(("fields", "says"), [
    ({"release": "average"}, "--release average .* add --paradigm switch"),
    ({"paradigm": "switch", "average_window": 3}, "--average-window .* add --paradigm switch --release average"),
    ({"paradigm": "switch", "release": "average", "average_window": 0}, "--average-window must be a positive number"),
])
def test_the_release_flags_belong_to_switch(fields, says):
    with pytest.raises(ConfigError, match=says):
        UpdateRequest(name="a", parent="b", data=["c"], steps=10, **fields)
