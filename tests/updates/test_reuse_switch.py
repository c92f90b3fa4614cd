"""`renewlm update --recipe reuse --then C --switch-at R`: Parmar et al.'s blend switch at LR = start/R."""

import math

import pytest
import yaml

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def base(train_store):
    if not train_store.exists("versions", "rs-base"):
        train(validate_run(run_dict("rs-base", steps=3)), train_store, fresh=True)
    return train_store


def switch_step(cfg) -> int:
    return cfg.schedule.build(cfg.total_steps, cfg.batch_tokens).events["switch"]


def test_switch_at_moves_the_blend_switch_to_lr_start_over_r(base):
    steps = 100
    default = update_config(base, UpdateRequest(name="rs1", parent="rs-base", data=["prose"], then=["prose:0.9", "code:0.1"], recipe="reuse", steps=steps))
    assert default.schedule.switch_at_lr_ratio == pytest.approx(0.2) and switch_step(default) == 72  # ceil(0.7113·100)
    for r in (2, 10, 50):
        cfg = update_config(base, UpdateRequest(name="rs2", parent="rs-base", data=["prose"], then=["prose:0.9", "code:0.1"],
                                                recipe="reuse", steps=steps, switch_at=r))
        schedule = cfg.schedule.build(steps, cfg.batch_tokens)
        at = switch_step(cfg)
        # The first step whose LR is at most start/R, and the step before it is still above.
        assert schedule.lr(at) <= cfg.schedule.start_lr / r < schedule.lr(at - 1)
        assert [p.end for p in cfg.mixture.phases] == ["switch", 1.0]
    # /2 lies just past the middle of the cosine to start/100: x = acos(2(0.5 − 0.01)/0.99 − 1)/π = 0.5032, step 51.
    assert switch_step(update_config(base, UpdateRequest(name="rs3", parent="rs-base", data=["prose"], then=["code"], recipe="reuse",
                                                         steps=steps, switch_at=2))) == 51


@pytest.mark.parametrize("r", [1.0, 0.5, 100.0, 1000.0, math.nan, math.inf])
def test_switch_at_outside_the_reuse_cosine_is_refused(base, r):
    with pytest.raises(ConfigError, match=r"must lie in \(1, 100\)"):
        update_config(base, UpdateRequest(name="rs4", parent="rs-base", data=["prose"], then=["code"], recipe="reuse", steps=10, switch_at=r))


def test_switch_at_needs_a_second_blend(base):
    with pytest.raises(ConfigError, match="--switch-at sets where the second blend starts.*--then"):
        update_config(base, UpdateRequest(name="rs5", parent="rs-base", data=["prose"], recipe="reuse", steps=10, switch_at=5))


def test_update_command_takes_switch_at_and_records_it(cli, base):
    code, _, err = cli("update", "rs-child", "--from", "rs-base", "--data", "prose", "--then", "prose:0.9", "--then", "code:0.1",
                       "--recipe", "reuse", "--switch-at", "10", "--steps", "8", "--micro-batch", "4", "--store", base.root)
    assert code == 0, err
    run = yaml.safe_load((base.path("runs", "rs-child") / "run.yaml").read_text())
    assert run["schedule"]["switch_at_lr_ratio"] == pytest.approx(0.1)
    code, _, err = cli("update", "rs-x", "--from", "rs-base", "--data", "code", "--paradigm", "retrain", "--switch-at", "5",
                       "--steps", "2", "--store", base.root)
    assert code == 2 and "--switch-at" in err and "retrain" in err
