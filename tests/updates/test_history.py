"""A version's history for the loss law: every step's LR since random weights and the held-out points its
runs logged, on one clock; refused, one sentence each, where there is no single logged curve."""

import json

import pytest

from renewlm.optim.schedule import validate_schedule
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.updates.history import read_history
from renewlm.updates.loss_law import FitError
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config
from renewlm.versions import build_record, read_version, write_record
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def lineage(train_store):
    if not train_store.exists("versions", "hist-child"):
        train(validate_run(run_dict("hist-base", steps=8, eval_every=2)), train_store, fresh=True)
        cfg = update_config(train_store, UpdateRequest(name="hist-child", parent="hist-base", data=["code"], replay=0.25, steps=6))
        train(cfg.model_copy(update={"eval_every": 3}), train_store, fresh=True)
    return train_store


def test_the_history_is_the_base_then_the_update_on_one_clock(lineage):
    history = read_history(lineage, "hist-child")
    assert history.versions == ["hist-base", "hist-child"]
    base = validate_schedule(read_version(lineage, "hist-base").schedule).build(8)
    child = validate_schedule(read_version(lineage, "hist-child").schedule).build(6)
    assert list(history.lrs) == pytest.approx([base.lr(i) for i in range(8)] + [child.lr(i) for i in range(6)])
    assert history.warmup_steps == base.events["warmup_end"]
    steps, losses = history.curve("prose")
    assert steps == [0, 2, 4, 6, 8, 11, 14]  # the update's step-0 evaluation is the base's step 8, kept once
    first = next(r for r in read_metrics(lineage.path("runs", "hist-child") / "metrics.jsonl") if "eval" in r)
    assert first["step"] == 0 and losses[4] == first["eval"]["prose"]  # the update's own evaluation of its start
    code_steps, _ = history.curve("code")
    assert code_steps == [8, 11, 14]  # the base never evaluated code: the update's step 0 is the base's end on it


def _record(store, name, **fields):
    folder = store.path("versions", name)
    folder.mkdir(parents=True, exist_ok=True)
    raw = read_version(store, "hist-base").model_dump(mode="json") | {"name": name, **fields}
    write_record(folder, build_record(raw))


def test_an_import_a_soup_or_a_folder_parent_has_no_curve_to_fit(lineage):
    _record(lineage, "hist-import", kind="import", schedule=None, parents=[])
    _record(lineage, "hist-after-import", parents=[{"name": "hist-import"}])
    with pytest.raises(FitError, match=r"^hist-import was not trained by renewlm, so the loss law has no logged curve to fit; "):
        read_history(lineage, "hist-after-import")
    _record(lineage, "hist-soup", kind="soup", parents=[{"name": "hist-base", "weight": 0.5}, {"name": "hist-child", "weight": 0.5}])
    with pytest.raises(FitError, match=r"^hist-soup is an average of several versions"):
        read_history(lineage, "hist-soup")
    _record(lineage, "hist-from-folder", parents=[{"name": "/models/elsewhere"}])
    with pytest.raises(FitError, match=r"^hist-from-folder started from /models/elsewhere, which is not a version in this store"):
        read_history(lineage, "hist-from-folder")


def test_an_average_adds_no_step_and_a_retrain_starts_the_clock(lineage):
    _record(lineage, "hist-ema", kind="release", steps=0, parents=[{"name": "hist-child"}], ema=0.9)
    child, ema = read_history(lineage, "hist-child"), read_history(lineage, "hist-ema")
    assert ema.versions == ["hist-base", "hist-child", "hist-ema"] and list(ema.lrs) == list(child.lrs) and ema.points == child.points
    _record(lineage, "hist-retrain", paradigm="retrain", parents=[{"name": "hist-child"}])  # its parent lent the architecture
    retrain = read_history(lineage, "hist-retrain")
    assert retrain.versions == ["hist-retrain"] and len(retrain.lrs) == 8 and retrain.warmup_steps == read_history(lineage, "hist-base").warmup_steps


def test_a_renamed_held_out_evaluator_is_read_under_its_name(lineage):
    _record(lineage, "hist-named", parents=[])
    run = lineage.path("runs", "hist-named")
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps({"config": {"evaluations": [{"kind": "lm_eval", "name": "tasks"}, {"kind": "heldout", "name": "val"}]}}))
    rows = [{"step": 0, "val": {"prose": 6.0}}, {"step": 4, "val": {"prose": 5.0}, "tasks": {"prose": 0.5}}, {"step": 8, "eval": {"prose": 1.0}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_history(lineage, "hist-named").curve("prose") == ([0, 4], [6.0, 5.0])
