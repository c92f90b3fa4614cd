"""Experiment trackers, offline, on tiny synthetic records: each writes what it was given where a user
looks for it, a resumed run continues the same tracker run, and a missing library is one clear error."""

import importlib.util
import json
import struct
import time
from pathlib import Path

import pytest

from renewlm.errors import ConfigError
from renewlm.train import trackers
from renewlm.train.metrics import MetricsLog
from renewlm.train.trackers import (
    MlflowTracker, TensorBoardTracker, WandbTracker, check_trackers, eval_scalars, flat_config, open_trackers, wandb_id,
)

CONFIG = {"name": "tiny", "seq_len": 32, "mixture": {"phases": [{"corpora": {"prose": 0.75, "code": 0.25}}]}}


def feed(tracker, steps, offset: float = 0.0) -> None:
    """Steps `steps` with loss step + offset, and an evaluation at the last one."""
    for step in steps:
        tracker.log_step({"step": step, "tokens": 256 * step, "lr": 1e-3, "loss": step + offset, "skipped_steps": 0})
    tracker.log_evaluation(steps[-1], {"prose": 10 + offset, "code": 20 + offset})


def test_a_missing_library_is_one_sentence_naming_the_extra(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert check_trackers(["tensorboard", "wandb"]) == [
        "the run asks for the wandb tracker but wandb is not installed; pip install 'renewlm[wandb]'"
    ]
    with pytest.raises(ConfigError, match=r"wandb is not installed; pip install 'renewlm\[wandb\]'"):
        WandbTracker(tmp_path, run_id="r", run_name="r", resume_step=None)
    # Through MetricsLog: nothing is opened and the metrics file of the run is left as it was.
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 2.0}\n')
    with pytest.raises(ConfigError, match="wandb tracker"):
        MetricsLog(metrics, enabled=True, resume_step=None, trackers=["tensorboard", "wandb"], run_id="r")
    assert metrics.read_text() == '{"step": 1, "loss": 2.0}\n'
    assert not (tmp_path / "tensorboard").exists()


def test_mlflow_needs_its_sqlite_store_libraries_too(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "alembic" else real(name, *a))
    assert check_trackers(["mlflow"]) == [
        "the run asks for the mlflow tracker but alembic is not installed; pip install 'renewlm[mlflow]'"
    ]
    assert check_trackers(["comet"]) == ["unknown tracker 'comet'; choose from tensorboard, wandb, mlflow"]


def test_flat_config_and_wandb_ids():
    assert flat_config(CONFIG) == {
        "name": "tiny", "seq_len": "32", "mixture.phases.0.corpora.prose": "0.75", "mixture.phases.0.corpora.code": "0.25",
    }
    assert flat_config({"trackers": [], "parent": None}) == {"trackers": "[]", "parent": "null"}
    assert wandb_id("run-20260101T000000Z") == "run-20260101T000000Z"
    long = wandb_id("x" * 80)
    assert len(long) == 64 and long != wandb_id("x" * 79 + "y")


def test_tensorboard_has_the_scalars_and_a_resume_replaces_the_steps_after_its_checkpoint(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for resume_step, steps, offset in ((None, [1, 2, 3, 4], 0.0), (2, [3, 4], 100.0)):
        tracker = TensorBoardTracker(tmp_path, run_id="r", run_name="r", resume_step=resume_step)
        tracker.log_config(CONFIG)
        feed(tracker, steps, offset)
        tracker.close("finished")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 1), (2, 2), (3, 103), (4, 104)]
    assert [(e.step, e.value) for e in events.Scalars("train/tokens")][0] == (1, 256)
    assert [(e.step, e.value) for e in events.Scalars("heldout/code")] == [(4, 120)]


def wandb_records(run_folder: Path) -> list:
    """The records of an offline W&B run: its `.wandb` file is a LevelDB-style log of protobuf records
    (a 7-byte file header, 32 KiB blocks, each chunk with a 7-byte header: crc32, length, type)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_folder.glob("run-*.wandb")
    data, pos, block, buffer, out = path.read_bytes(), 7, 32768, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buffer += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(buffer)
            out.append(record)
            buffer = b""
    return out


def wandb_finished_records(run_folder: Path, timeout: float = 30.0) -> list:
    """The run's records once its exit record is on disk: W&B's service writes the `.wandb` file from
    its own process, and `finish()` may return before that process has flushed the run's last records."""
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(run_folder)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wandb_history(run_folder: Path) -> dict[int, dict[str, float]]:
    rows = {}
    for record in wandb_finished_records(run_folder):
        if record.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            rows[record.history.step.num] = {k: v for k, v in row.items() if not k.startswith("_")}
    return rows


def test_wandb_offline_run_has_the_history_and_a_resume_continues_the_same_run_id(tmp_path):
    for resume_step, steps, offset in ((None, [1, 2, 3], 0.0), (2, [3, 4], 100.0)):
        tracker = WandbTracker(tmp_path, run_id="tiny-20260101T000000Z", run_name="tiny", resume_step=resume_step)
        tracker.log_config(CONFIG)
        feed(tracker, steps, offset)
        tracker.close("finished")
    # Named offline-run-<time>-<id>, with -1, -2... appended when two open in the same second.
    first, resumed = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert first.name.endswith("-tiny-20260101T000000Z")
    history = wandb_history(first)
    assert history[1] == {"train/tokens": 256, "train/lr": 1e-3, "train/loss": 1, "train/skipped_steps": 0}
    assert history[3]["train/loss"] == 3 and history[3]["heldout/prose"] == 10 and history[3]["heldout/code"] == 20
    assert {s: r["train/loss"] for s, r in wandb_history(resumed).items()} == {3: 103, 4: 104}
    for folder in (first, resumed):
        records = wandb_finished_records(folder)
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert run.run_id == "tiny-20260101T000000Z" and run.display_name == "tiny"
        config = {i.key: json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "config" for i in r.config.update}
        assert config["mixture"] == CONFIG["mixture"] and config["seq_len"] == 32


def test_mlflow_store_has_the_metrics_at_their_steps_and_a_resume_continues_the_run(tmp_path):
    from mlflow.tracking import MlflowClient

    ids = []
    for resume_step, steps, offset, status in ((None, [1, 2, 3], 0.0, "stopped"), (2, [3, 4], 100.0, "finished")):
        tracker = MlflowTracker(tmp_path, run_id="tiny-1", run_name="tiny", resume_step=resume_step)
        # MLflow refuses to change a logged parameter: a resume adds only the ones the run lacks.
        tracker.log_config(CONFIG if resume_step is None else {**CONFIG, "seq_len": 64, "log_every": 5})
        feed(tracker, steps, offset)
        tracker.close(status)
        ids.append(tracker.run_id)
    assert ids[0] == ids[1]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}")
    run = client.get_run(ids[0])
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params == {**flat_config(CONFIG), "log_every": "5"} and run.data.tags["renewlm.run_id"] == "tiny-1"
    # MLflow keeps every point logged; the interrupted process's step 3 stays beside the resumed one.
    loss = [(m.step, m.value) for m in client.get_metric_history(ids[0], "train/loss")]
    assert loss == [(1, 1), (2, 2), (3, 3), (3, 103), (4, 104)]
    assert [(m.step, m.value) for m in client.get_metric_history(ids[0], "heldout/prose")] == [(3, 10), (4, 110)]
    # A fresh start in the same folder is a new MLflow run.
    fresh = MlflowTracker(tmp_path, run_id="tiny-1", run_name="tiny", resume_step=None)
    fresh.close("failed")
    assert fresh.run_id != ids[0] and client.get_run(fresh.run_id).info.status == "FAILED"


def test_open_trackers_opens_each_name_once_under_the_run_folder(tmp_path):
    opened = open_trackers(["tensorboard", "tensorboard"], tmp_path, run_id="r", run_name="r", resume_step=None)
    assert [type(t) for t in opened] == [TensorBoardTracker]
    opened[0].close("finished")
    assert [p.name for p in tmp_path.iterdir()] == ["tensorboard"]


def test_every_tracker_class_is_reachable_by_its_name():
    assert set(trackers._CLASSES) == set(trackers._MODULES) == {"tensorboard", "wandb", "mlflow"}


def test_evaluators_are_named_by_their_numbers():
    assert eval_scalars({"prose": 4.0}) == {"heldout/prose": 4.0}
    assert eval_scalars({"qa/acc": 0.5}, "lm_eval") == {"lm_eval/qa/acc": 0.5}
