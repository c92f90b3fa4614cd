"""metrics.jsonl: resume truncation that survives a torn last line, tolerant reading, and the trackers
MetricsLog feeds (stood in for by a recording fake; the real ones are tested in test_trackers.py)."""

import json

import pytest

from renewlm.train import metrics as metrics_module
from renewlm.train.metrics import MetricsLog, read_metrics, scan_metrics


def step(n: int) -> dict:
    return {"step": n, "tokens": 256 * n, "lr": 1e-3, "loss": 5.0 - n / 10}


def evaluation(n: int) -> dict:
    return {"step": n, "tokens": 256 * n, "eval": {"prose": 4.0}}


def lines(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


class Recorder:
    def __init__(self, names, folder, **kwargs):
        self.names, self.folder, self.kwargs, self.calls = list(names), folder, kwargs, []

    def log_config(self, config):
        self.calls.append(("config", config))

    def log_step(self, record):
        self.calls.append(("step", record["step"], record["loss"]))

    def log_evaluation(self, step, losses, name="eval"):
        self.calls.append((name, step, losses))

    def close(self, status):
        self.calls.append(("close", status))


@pytest.fixture
def recorder(monkeypatch):
    made = []

    def fake_open(names, folder, **kwargs):
        made.append(Recorder(names, folder, **kwargs))
        return [made[-1]] if names else []

    monkeypatch.setattr(metrics_module, "open_trackers", fake_open)
    return made


def test_a_torn_last_line_is_dropped_and_counted_on_resume(tmp_path):
    path = tmp_path / "metrics.jsonl"
    # Killed mid-write after step 5: the last line stops inside its JSON object, with no newline.
    path.write_text(lines(evaluation(0), step(1), step(2), step(3), evaluation(3), step(4), step(5)) + '{"step": 6, "lo')
    log = MetricsLog(path, enabled=True, resume_step=3, run_id="r")
    assert log.dropped_lines == 1
    log.write(step(4))
    log.close()
    # The evaluation at the resume step is dropped too: the resumed run repeats it.
    assert read_metrics(path) == [evaluation(0), step(1), step(2), step(3), step(4)]
    assert path.read_text().endswith("\n") and not list(tmp_path.glob(".*"))


def test_unreadable_lines_anywhere_are_dropped_and_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(lines(step(1)) + "not json\n" + '["a list"]\n{"loss": 1.0}\n{"step": "2"}\n' + lines(step(2)) + "\0" * 64)
    assert scan_metrics(path) == ([step(1), step(2)], 5)
    log = MetricsLog(path, enabled=True, resume_step=2)
    log.close()
    assert log.dropped_lines == 5
    assert scan_metrics(path) == ([step(1), step(2)], 0)


def test_read_metrics_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(lines(step(1), step(2)) + '{"step": 3, "tokens": 76')
    assert read_metrics(path) == [step(1), step(2)]
    assert scan_metrics(path) == ([step(1), step(2)], 1)
    # A complete last record without its newline is kept: it parses.
    path.write_text(lines(step(1)) + json.dumps(step(2)))
    assert read_metrics(path) == [step(1), step(2)]


def test_a_fresh_start_empties_the_file_and_a_resume_without_one_creates_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(lines(step(1), step(2)))
    MetricsLog(path, enabled=True, resume_step=None).close()
    assert path.read_text() == ""
    path.unlink()
    log = MetricsLog(path, enabled=True, resume_step=7)
    log.write(step(8))
    log.close()
    assert read_metrics(path) == [step(8)]


def test_off_the_main_process_nothing_is_written_or_opened(tmp_path, recorder):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=False, resume_step=None, trackers=["wandb"], run_id="r")
    log.write(step(1))
    log.close()
    assert not path.exists() and recorder == []


def test_trackers_get_the_config_once_each_record_and_how_the_run_ended(tmp_path, recorder):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, enabled=True, resume_step=None, trackers=["mlflow"], run_id="r-1", config={"seq_len": 32})
    (tracker,) = recorder
    assert tracker.names == ["mlflow"] and tracker.folder == tmp_path
    assert tracker.kwargs == {"run_id": "r-1", "run_name": tmp_path.name, "resume_step": None}
    for record in (evaluation(0), step(1), step(2), evaluation(2)):
        log.write(record)
    log.close()
    assert tracker.calls == [
        ("config", {"seq_len": 32}), ("eval", 0, {"prose": 4.0}), ("step", 1, 4.9), ("step", 2, 4.8),
        ("eval", 2, {"prose": 4.0}), ("close", "finished"),
    ]
    assert len(read_metrics(path)) == 4


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, "stopped"), (RuntimeError, "failed")])
def test_a_close_during_an_exception_tells_the_trackers(tmp_path, recorder, error, status):
    log = MetricsLog(tmp_path / "metrics.jsonl", enabled=True, resume_step=4, trackers=["wandb"], run_id="r")
    with pytest.raises(error):
        try:
            raise error
        finally:
            log.close()
    assert recorder[0].calls[-1] == ("close", status) and recorder[0].kwargs["resume_step"] == 4


def test_a_real_tensorboard_tracker_gets_the_records(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricsLog(tmp_path / "metrics.jsonl", enabled=True, resume_step=None, trackers=["tensorboard"], run_id="r")
    for record in (evaluation(0), step(1), step(2), evaluation(2)):
        log.write(record)
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("train/loss")] == [(1, 4.9), (2, 4.8)]
    assert [e.step for e in events.Scalars("heldout/prose")] == [0, 2]


def test_every_evaluators_numbers_reach_the_trackers_and_are_cut_back_on_resume(tmp_path, recorder):
    path = tmp_path / "metrics.jsonl"
    tasks = {"step": 3, "tokens": 768, "lm_eval": {"qa/acc": 0.5}}  # an lm-eval evaluator, due alone at step 3
    path.write_text(lines(step(1), step(2), step(3), tasks))
    log = MetricsLog(path, enabled=True, resume_step=3, trackers=["tensorboard"], run_id="r")
    log.write({"step": 3, "tokens": 768, "eval": {"prose": 4.0}, "lm_eval": {"qa/acc": 0.5}})
    log.close()
    assert read_metrics(path)[:3] == [step(1), step(2), step(3)] and len(read_metrics(path)) == 4  # not twice
    calls = recorder[0].calls
    assert ("eval", 3, {"prose": 4.0}) in calls and ("lm_eval", 3, {"qa/acc": 0.5}) in calls
