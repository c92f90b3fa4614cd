"""`renewlm update`: the short form fills in the papers' defaults and the lineage's replay."""

import json

import pytest
import yaml

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.update import update_config
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def base(train_store):
    if not train_store.exists("versions", "upd-base"):
        train(validate_run(run_dict("upd-base", steps=3)), train_store, fresh=True)
    return train_store


def test_update_config_replays_the_lineage_and_takes_the_parents_settings(base):
    cfg = update_config(base, "u1", parent="upd-base", data=["code"], replay=0.25, tokens=256 * 10)
    assert cfg.mixture.phase_weights() == [{"code": 0.75, "prose": 0.25}]
    assert (cfg.seq_len, cfg.batch_tokens, cfg.total_steps) == (32, 256, 10)
    assert cfg.schedule.name == "cosine" and cfg.schedule.peak_lr == 3e-3  # the parent's peak: re-warm to it
    reuse = update_config(base, "u2", parent="upd-base", data=["code"], recipe="reuse", steps=5)
    assert reuse.schedule.start_lr == pytest.approx(3e-4)  # the parent's floor, 0.1·peak
    constant = update_config(base, "u3", parent="upd-base", data=["code"], recipe="constant", steps=5)
    assert constant.schedule.lr == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match="records no training corpora other than"):
        update_config(base, "u4", parent="upd-base", data=["prose"], replay=0.1, steps=5)
    with pytest.raises(ConfigError, match="not in the store"):
        update_config(base, "u5", parent="upd-base", data=["code"], replay=0.1, replay_from=["gone"], steps=5)


def test_update_command_trains_and_records_the_resolved_run(cli, base):
    code, out, err = cli("update", "upd-child", "--from", "upd-base", "--data", "code", "--replay", "0.25",
                         "--steps", "4", "--micro-batch", "4", "--store", base.root)
    assert code == 0, err
    meta = json.loads((base.path("versions", "upd-child") / "version.json").read_text())
    assert meta["parent"] == "upd-base" and meta["corpora"] == ["code", "prose"] and meta["start"] == "weights"
    assert set(meta["losses"]) == {"code", "prose"}
    run = yaml.safe_load((base.path("runs", "upd-child") / "run.yaml").read_text())
    assert run["mixture"]["replay"] == {"fraction": 0.25, "corpora": {"prose": 1.0}}
    code, _, err = cli("update", "upd-child", "--from", "upd-base", "--data", "code", "--steps", "4", "--store", base.root)
    assert code == 2 and "already exists" in err
    code, _, err = cli("update", "x", "--from", "no-such", "--data", "code", "--steps", "4", "--store", base.root)
    assert code == 2 and "no version named 'no-such'" in err
