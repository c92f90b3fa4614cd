"""The run config (train/config.py): its own checks, beside those of the components it composes."""

import pytest
import yaml

from renewlm.errors import ConfigError
from renewlm.model.presets import PRESETS
from renewlm.train.config import validate_run
from tests.train.conftest import run_dict


def test_preset_is_a_row_of_the_preset_table(monkeypatch):
    assert validate_run(run_dict("p")).preset == "tiny"
    with pytest.raises(ConfigError, match=r"^run: preset: unknown preset 'huge'; choose one of tiny, small, 125m, 350m, 1b$"):
        validate_run(run_dict("p", preset="huge"))
    monkeypatch.setitem(PRESETS, "wide", PRESETS["small"])  # a new preset is one row of the table
    assert validate_run(run_dict("p", preset="wide")).preset == "wide"


@pytest.mark.parametrize("schedule, why", [
    ({"name": "cosine", "peak_lr": 1e-3}, "decays by design"),
    ({"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5, "anneal_fraction": 0.1}, "has an anneal stage"),
    ({"name": "branch", "start_lr": 1e-3, "decay_tokens": 64}, "has a decay stage"),
])
def test_a_trunk_refuses_a_schedule_that_decays_saying_why(schedule, why):
    with pytest.raises(ConfigError, match=f"a trunk never decays .* this {schedule['name']} schedule {why}; use constant"):
        validate_run(run_dict("t", kind="trunk", schedule=schedule))
    held = {"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5}  # the main path: cooldown, then constant
    assert validate_run(run_dict("t", paradigm="switch", schedule=held)).schedule.decays() is None


def test_a_run_file_says_continue_or_switch_and_single_still_reads_as_continue(tmp_path):
    from renewlm.train.config import load_run
    from renewlm.train.run import config_changes

    assert validate_run(run_dict("p")).paradigm == "continue"
    old = tmp_path / "old.yaml"  # a run file written when continue was called single
    old.write_text(yaml.safe_dump(run_dict("p", paradigm="single")))
    cfg = load_run(old)
    assert cfg.paradigm == "continue" and cfg.model_dump(mode="json")["paradigm"] == "continue"
    assert config_changes(run_dict("p", paradigm="single"), validate_run(run_dict("p"))) == []  # a recorded run resumes
    assert config_changes(run_dict("p", paradigm="single"), validate_run(run_dict("p", paradigm="switch", schedule={
        "name": "constant", "lr": 1e-3}))) == ["paradigm", "schedule"]
    with pytest.raises(ConfigError, match=r"^run: paradigm: a run file retrains with from_scratch: true \(random weights in "
                                          r"the parent's architecture\), not paradigm: retrain; write from_scratch: true"):
        validate_run(run_dict("p", paradigm="retrain"))
    with pytest.raises(ConfigError, match=r"paradigm: Input should be 'continue' or 'switch' \(got 'rebase'\)"):
        validate_run(run_dict("p", paradigm="rebase"))


@pytest.mark.parametrize("value", [-1e-4, float("inf"), float("nan")])
def test_a_z_loss_weight_is_zero_or_a_finite_positive_number(value):
    with pytest.raises(ConfigError, match=r"^run: z_loss: .* is not a z-loss weight; give 0 \(off\) or a small positive number such as 1e-4"):
        validate_run(run_dict("z", z_loss=value))
    assert validate_run(run_dict("z")).z_loss == 0
    assert validate_run(run_dict("z", z_loss=1e-4)).z_loss == 1e-4
