"""Predictions of an update from the parent's logged curve and probes: a probe per candidate within the budget,
trained once and reused, a predicted loss per corpus; refused in one sentence where no fit can be made."""

import json
import re

import pytest

from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.updates.loss_law import FitError
from renewlm.updates.predict import PROBE_EVALS, predict, probe_config
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def parent(train_store):
    if not train_store.exists("versions", "pred-base"):
        train(validate_run(run_dict("pred-base", steps=12, eval_every=2)), train_store, fresh=True)
    if not train_store.exists("versions", "pred-flat"):  # evaluated at its start and end only
        train(validate_run(run_dict("pred-flat", steps=4)), train_store, fresh=True)
    return train_store


def _candidate(store, replay, steps=160):
    # the same candidates as `plan --from pred-base --data code --predict --steps 160 --replay 0 --replay 0.25`
    return update_config(store, UpdateRequest(name="pred-base.candidate", parent="pred-base", data=["code"], replay=replay, steps=steps))


def test_a_probe_per_candidate_is_trained_once_and_gives_a_loss_per_corpus(parent):
    trained = []

    def run_probe(cfg):
        trained.append(cfg)
        return train(cfg, parent, fresh=True)

    candidates = {"replay 0%": _candidate(parent, 0.0), "replay 25%": _candidate(parent, 0.25)}
    first = predict(parent, candidates, run_probe)
    assert [c.total_steps for c in trained] == [8, 8]  # 10% of one 160-step update, shared by the two
    assert [c.name for c in trained] == [probe_config(c, 8).name for c in candidates.values()]
    assert all(c.schedule.name == "constant" and c.eval_every == 1 for c in trained)
    for p in first:
        assert set(p.final) == {"code", "prose"} and all(loss > 0 for loss in p.final.values())
        own = next(r for r in read_metrics(parent.path("runs", p.probe) / "metrics.jsonl") if "eval" in r)
        assert own["step"] == 0 and p.start == own["eval"]  # the parent's weights as the probe evaluates them
        assert p.change()["prose"] == pytest.approx(p.final["prose"] - own["eval"]["prose"])
    again = predict(parent, candidates, lambda cfg: pytest.fail(f"{cfg.name} exists and is trained again"))
    assert [p.final for p in again] == [p.final for p in first]


def test_a_budget_too_small_for_the_probes_is_one_sentence(parent):
    short = {f"r{k}": _candidate(parent, k / 10, steps=100) for k in range(3)}  # 3 steps each
    with pytest.raises(FitError, match=rf"^probes of 3 candidate\(s\) within 10% of a 100-step update get 3 step\(s\) each, fewer than the {PROBE_EVALS}"):
        predict(parent, short, lambda cfg: pytest.fail("nothing is trained"))


def test_plan_predict_says_the_probes_cost_then_prints_the_losses(parent, cli):
    args = ("plan", "--from", "pred-base", "--data", "code", "--predict", "--steps", "160", "--replay", "0", "--replay", "0.25",
            "--store", parent.root)
    code, out, err = cli(*args)  # the probes of the test above: trained here if it has not run
    assert code == 0, err
    assert re.search(r"probes: 2 of 8 steps \(2\.05k tokens each; all of them 10\.0% of one update's 41k, at most 10%\); "
                     r"(0 to train, 2 reused|2 to train, 0 reused)", " ".join(out.split())), out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert [(c[1], c[2]) for c in cells if c[1] == "code"] == [("code", "new")] * 2 and sum(c[1] == "prose" for c in cells) == 2
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    assert [(row["candidate"], sorted(row["predicted"])) for row in json.loads(out)] == [
        ("replay 0", ["code", "prose"]), ("replay 0.25", ["code", "prose"])]


def test_a_parent_without_a_curve_is_one_sentence(parent, cli):
    code, out, err = cli("plan", "--from", "pred-flat", "--data", "code", "--predict", "--steps", "80", "--store", parent.root)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: pred-flat's held-out curve on prose has 1 held-out point(s) after step 0; the loss law needs at least 5")
