"""Experiment trackers beside `metrics.jsonl`: TensorBoard, Weights & Biases and MLflow.

Each is a small class behind one interface (log the run's config once, log a training step, log an
evaluation, close) and writes only under the run folder, offline:
- tensorboard: event files in `runs/NAME/tensorboard/`;
- wandb: an offline W&B run in `runs/NAME/wandb/offline-run-*` (upload later with `wandb sync`);
- mlflow: an SQLite tracking store `runs/NAME/mlflow.db` (view with `mlflow ui --backend-store-uri sqlite:///...`).
Their libraries are optional extras, imported only when a run asks for them. Names on every tracker:
`train/<field>` for each number of a step record, `heldout/<corpus>` for each evaluated corpus, and
`<evaluator>/<number>` for the other evaluators' numbers (lm-eval tasks).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Literal, Protocol

from renewlm.errors import ConfigError

TrackerName = Literal["tensorboard", "wandb", "mlflow"]
Status = Literal["finished", "stopped", "failed"]

# The modules each tracker imports, in the order they are checked.
_MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard",),
    "wandb": ("wandb",),
    # MLflow's file store is in maintenance mode (3.x refuses it without an opt-out); its SQLite store
    # needs SQLAlchemy and Alembic, which mlflow-skinny leaves out.
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
}


class Tracker(Protocol):
    def log_config(self, config: dict) -> None: ...

    def log_step(self, record: dict) -> None: ...

    def log_evaluation(self, step: int, losses: dict[str, float], name: str = "eval") -> None: ...

    def close(self, status: Status) -> None: ...


def check_trackers(names: list[str] | tuple[str, ...]) -> list[str]:
    """One sentence per requested tracker whose library is not installed (empty when all are)."""
    problems = []
    for name in names:
        if name not in _MODULES:
            problems.append(f"unknown tracker {name!r}; choose from {', '.join(_MODULES)}")
            continue
        missing = [m for m in _MODULES[name] if importlib.util.find_spec(m) is None]
        if missing:
            problems.append(
                f"the run asks for the {name} tracker but {missing[0]} is not installed; pip install 'renewlm[{name}]'"
            )
    return problems


def _require(name: str) -> None:
    problems = check_trackers([name])
    if problems:
        raise ConfigError(problems[0])


def open_trackers(
    names: list[str] | tuple[str, ...], folder: Path, *, run_id: str, run_name: str, resume_step: int | None
) -> list[Tracker]:
    """Open each named tracker under `folder`; `resume_step` continues the tracker runs of `run_id`."""
    problems = check_trackers(names)
    if problems:
        raise ConfigError("; ".join(problems))
    opened: list[Tracker] = []
    try:
        for name in dict.fromkeys(names):  # a name given twice opens once
            opened.append(_CLASSES[name](Path(folder), run_id=run_id, run_name=run_name, resume_step=resume_step))
    except BaseException:
        for tracker in opened:
            tracker.close("failed")
        raise
    return opened


def step_scalars(record: dict) -> dict[str, float]:
    """The numbers of a step record, named as every tracker names them."""
    return {
        f"train/{key}": float(value)
        for key, value in record.items()
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def eval_scalars(losses: dict[str, float], name: str = "eval") -> dict[str, float]:
    """An evaluator's numbers as every tracker names them: held-out loss (`eval`) as heldout/<corpus>."""
    prefix = "heldout" if name == "eval" else name
    return {f"{prefix}/{key}": float(value) for key, value in losses.items()}


def flat_config(config: dict, prefix: str = "") -> dict[str, str]:
    """`{"a": {"b": [1, 2]}}` -> `{"a.b.0": "1", "a.b.1": "2"}`: trackers with flat string parameters."""
    out: dict[str, str] = {}
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, (dict, list, tuple)) and value:
            out.update(flat_config(value, name + "."))
        else:
            out[name] = json.dumps(value) if not isinstance(value, str) else value
    return out


class TensorBoardTracker:
    def __init__(self, folder: Path, *, run_id: str, run_name: str, resume_step: int | None):
        _require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        # purge_step hides events at or past it that an earlier, interrupted process wrote: a fresh
        # start hides all of them, a resume those after its checkpoint's step.
        purge = 0 if resume_step is None else resume_step + 1
        self._writer = SummaryWriter(str(folder / "tensorboard"), purge_step=purge)

    def log_config(self, config: dict) -> None:
        self._writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_step(self, record: dict) -> None:
        for tag, value in step_scalars(record).items():
            self._writer.add_scalar(tag, value, record["step"])

    def log_evaluation(self, step: int, losses: dict[str, float], name: str = "eval") -> None:
        for tag, value in eval_scalars(losses, name).items():
            self._writer.add_scalar(tag, value, step)

    def close(self, status: Status) -> None:
        self._writer.close()


def wandb_id(run_id: str) -> str:
    """The W&B run id of a renewlm run: the run id itself, shortened with a hash past W&B's 64 characters."""
    if len(run_id) <= 64:
        return run_id
    return f"{run_id[:55]}-{hashlib.sha1(run_id.encode()).hexdigest()[:8]}"


class WandbTracker:
    def __init__(self, folder: Path, *, run_id: str, run_name: str, resume_step: int | None):
        _require("wandb")
        # renewlm never reaches the network while training: no crash reports from W&B's service either.
        os.environ["WANDB_ERROR_REPORTING"] = "false"
        import wandb

        settings = wandb.Settings(
            mode="offline",
            silent=True,
            # W&B's console capture would wrap stdout under renewlm's own progress display.
            console="off",
            save_code=False,
        )
        # resume="allow" with the same id: a resumed run's offline folder is synced into the same W&B run.
        self._run = wandb.init(
            project="renewlm", name=run_name, id=wandb_id(run_id), resume="allow", dir=str(folder), settings=settings
        )

    def log_config(self, config: dict) -> None:
        self._run.config.update(config, allow_val_change=True)

    def log_step(self, record: dict) -> None:
        self._run.log(step_scalars(record), step=record["step"])

    def log_evaluation(self, step: int, losses: dict[str, float], name: str = "eval") -> None:
        self._run.log(eval_scalars(losses, name), step=step)

    def close(self, status: Status) -> None:
        self._run.finish(exit_code=1 if status == "failed" else 0)


_MLFLOW_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}
_RUN_TAG = "renewlm.run_id"


class MlflowTracker:
    def __init__(self, folder: Path, *, run_id: str, run_name: str, resume_step: int | None):
        _require("mlflow")
        # MLflow sends anonymous usage data unless told not to; renewlm never reaches the network while training.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        with warnings.catch_warnings():
            # SQLAlchemy 2.1 deprecates a loader option MLflow's store still configures; not ours to fix.
            warnings.simplefilter("ignore")
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient

            self._metric, self._param = Metric, Param
            for name in ("mlflow.store.db.utils", "alembic"):  # table creation talks at INFO level
                logging.getLogger(name).setLevel(logging.WARNING)
            folder = folder.resolve()
            self._client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
            experiment = self._client.get_experiment_by_name("renewlm")
            experiment_id = (
                experiment.experiment_id
                if experiment
                else self._client.create_experiment("renewlm", artifact_location=(folder / "mlflow-artifacts").as_uri())
            )
        # The run is found again by its renewlm run id (a tag), so a resume continues it.
        found = []
        if resume_step is not None:
            found = self._client.search_runs(
                [experiment_id], filter_string=f"tags.`{_RUN_TAG}` = '{run_id}'", max_results=1,
                order_by=["attributes.start_time DESC"],
            )
        if found:
            self.run_id = found[0].info.run_id
            self._client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self._client.create_run(experiment_id, run_name=run_name, tags={_RUN_TAG: run_id}).info.run_id

    def log_config(self, config: dict) -> None:
        # MLflow parameters cannot change once logged; a resumed run logs only the ones it lacks.
        have = self._client.get_run(self.run_id).data.params
        params = [self._param(k, v) for k, v in flat_config(config).items() if k not in have]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self._client.log_batch(self.run_id, params=params[i : i + 100])

    def _log(self, scalars: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self._metric(key, value, now, step) for key, value in scalars.items()]
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def log_step(self, record: dict) -> None:
        self._log(step_scalars(record), record["step"])

    def log_evaluation(self, step: int, losses: dict[str, float], name: str = "eval") -> None:
        self._log(eval_scalars(losses, name), step)

    def close(self, status: Status) -> None:
        self._client.set_terminated(self.run_id, status=_MLFLOW_STATUS[status])


_CLASSES = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MlflowTracker}
