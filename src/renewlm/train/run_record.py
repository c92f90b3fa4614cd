"""The run record: what `runs/NAME/` says about a run once it has started, read in one place.

- `run.json`: the run's identity (its id, its resolved config, and the host and device it ran on),
  written once through a rename when the run starts;
- `run.yaml`: the same config, resolved, as a file `renewlm train` takes again;
- `metrics.jsonl`: a line per logged step and evaluation.

`measured_speed` is the one rule for how fast a model trains here, used by `renewlm train` (its
plan line) and `renewlm plan` (its hours): the median of the tokens/second of every logged step of
the runs the caller picks, so a few slow first steps (compilation, a cold cache) do not skew it.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from renewlm.errors import CorruptError
from renewlm.store import Store, read_json
from renewlm.train.metrics import read_metrics

RUN_FILE = "run.json"
RUN_YAML = "run.yaml"
METRICS = "metrics.jsonl"


def read_identity(folder: Path) -> dict | None:
    """The run's config and id from `run.json`, or None for a folder that has none yet."""
    path = folder / RUN_FILE
    if not path.is_file():
        return None
    identity = read_json(path)
    if not isinstance(identity, dict) or not {"run_id", "config"} <= set(identity):
        raise CorruptError(f"{path} is not a run record (it lacks run_id or config); rerun with --fresh to start the run over")
    return identity


def read_run_config(folder: Path) -> dict:
    """The config in a run's `run.yaml`, or {} where there is none or it cannot be read (a run being written)."""
    try:
        data = yaml.safe_load((folder / RUN_YAML).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def step_speeds(folder: Path) -> list[float]:
    """Tokens/second of every logged training step of the run in `folder` (torn lines skipped)."""
    path = folder / METRICS
    if not path.is_file():
        return []
    values = (r.get("tokens_per_second") for r in read_metrics(path) if isinstance(r, dict))
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]


@dataclass(frozen=True)
class Speed:
    tokens_per_second: float
    source: str


def measured_speed(store: Store, match: Callable[[Path], bool]) -> Speed | None:
    """The median tokens/second over every logged step of the store's runs whose folder `match`es, or
    None when none of them logged a step."""
    speeds, used = [], []
    for name in store.names("runs"):
        folder = store.path("runs", name)
        if match(folder) and (found := step_speeds(folder)):
            speeds += found
            used.append(name)
    if not speeds:
        return None
    return Speed(statistics.median(speeds), f"measured: median of {len(speeds):,} steps in {_runs(used)}")


def _runs(names: list[str], shown: int = 3) -> str:
    """'run a', 'runs a, b', or 'runs a, b, c and 37 more': a store with many runs keeps the plan line short."""
    if len(names) == 1:
        return f"run {names[0]}"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"runs {', '.join(names[:shown])}{more}"
