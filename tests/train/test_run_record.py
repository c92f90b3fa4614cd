"""The run record: run.json's identity, run.yaml, and the one rule for a measured speed."""

import json
from types import SimpleNamespace

from renewlm.distributed import setup
from renewlm.store import Store
from renewlm.train.config import validate_run
from renewlm.train.loop import speed_here
from renewlm.train.run import open_run_folder
from renewlm.train.run_record import measured_speed, read_identity, read_run_config, step_speeds
from tests.train.conftest import run_dict

HERE = {"name": "cpu (2 cores)", "count": 1, "host": "box"}


def write_run(store, name, config: dict, speeds, *, device=HERE, extra_lines=()):
    folder = store.path("runs", name)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"run_id": f"{name}-1", "config": config, "device": device}))
    lines = [json.dumps({"step": i + 1, "tokens": 100 * (i + 1), "loss": 3.0, "tokens_per_second": s}) for i, s in enumerate(speeds)]
    (folder / "metrics.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n")
    return folder


def test_the_identity_records_the_device_the_run_started_on(tmp_path):
    store, dist = Store(tmp_path / "s"), setup()
    run_id = open_run_folder(validate_run(run_dict("r")), store, dist, fresh=True)
    identity = read_identity(store.path("runs", "r"))
    assert identity["run_id"] == run_id and identity["device"] == dist.hardware() and identity["config"]["seq_len"] == 32
    assert read_run_config(store.path("runs", "r"))["preset"] == "tiny"  # run.yaml: the same config
    assert read_run_config(tmp_path / "nowhere") == {}


def test_measured_speed_is_the_median_of_every_step_of_the_runs_picked(tmp_path):
    store = Store(tmp_path / "s")
    a = write_run(store, "a", {"preset": "tiny"}, [100, 500], extra_lines=['{"step": 3, "tokens_per'])  # a torn last line
    write_run(store, "b", {"preset": "tiny"}, [200, 300, 250])
    write_run(store, "c", {"preset": "small"}, [9999])
    assert step_speeds(a) == [100.0, 500.0]
    speed = measured_speed(store, lambda folder: folder.name in ("a", "b"))
    assert speed.tokens_per_second == 250 and speed.source == "measured: median of 5 steps in runs a, b"
    assert measured_speed(store, lambda folder: False) is None
    for name in "defg":
        write_run(store, name, {"preset": "tiny"}, [400])
    many = measured_speed(store, lambda folder: folder.name != "c")
    assert many.source == "measured: median of 9 steps in runs a, b, d and 3 more"  # a long list is cut short


def test_train_estimates_from_runs_of_its_model_and_length_on_this_device(tmp_path):
    store = Store(tmp_path / "s")
    write_run(store, "mine", {"preset": "tiny", "seq_len": 32}, [100, 300])
    write_run(store, "longer", {"preset": "tiny", "seq_len": 64}, [50])
    write_run(store, "elsewhere", {"preset": "tiny", "seq_len": 32}, [9000], device={**HERE, "host": "other"})
    write_run(store, "child", {"parent": "v1", "seq_len": 32}, [700])
    damaged = store.path("runs", "damaged")
    damaged.mkdir()
    (damaged / "run.json").write_text("{not json")

    def run(**cfg):
        return SimpleNamespace(store=store, cfg=SimpleNamespace(seq_len=32, **cfg), dist=SimpleNamespace(hardware=lambda: HERE))

    speed = speed_here(run(preset="tiny", parent=None))
    assert speed.tokens_per_second == 200 and speed.source.endswith("in run mine")
    assert speed_here(run(preset=None, parent="v1")).tokens_per_second == 700
    assert speed_here(run(preset="small", parent=None)) is None
