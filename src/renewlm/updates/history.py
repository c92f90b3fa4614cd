"""A version's training history as the loss law reads it: the LR of every step since random weights, and
the held-out losses its runs logged on the way (`metrics.jsonl`), on one clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from renewlm.optim.schedule import validate_schedule
from renewlm.store import Store
from renewlm.train.metrics import read_metrics
from renewlm.updates.loss_law import FitError
from renewlm.versions import read_version
from renewlm.versions.record import VersionRecord


@dataclass
class History:
    """`lrs[i]`: the LR of step i of the whole lineage; `points[corpus]`: (step, held-out loss), the step counted
    from the first step of the lineage; `warmup_steps`: the warmup from random weights at its start."""

    versions: list[str]
    lrs: np.ndarray
    warmup_steps: int
    points: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def curve(self, corpus: str) -> tuple[list[int], list[float]]:
        pts = self.points.get(corpus, [])
        return [s for s, _ in pts], [loss for _, loss in pts]


def _chain(store: Store, name: str) -> list[VersionRecord]:
    """The runs from random weights to `name`, first first; FitError where the way up is not one logged run after another."""
    chain: list[VersionRecord] = []
    current: str | None = name
    while current is not None:
        meta = read_version(store, current)
        if meta.kind == "import" or meta.schedule is None:
            raise FitError(f"{current} was not trained by renewlm, so the loss law has no logged curve to fit; "
                           "renewlm cannot yet predict the updates of a model it did not pre-train")
        if meta.kind == "soup" or len(meta.parent_names) > 1:
            raise FitError(f"{current} is an average of several versions, which has no single training curve; "
                           "predict the update from one of its parents")
        chain.append(meta)
        if meta.paradigm == "retrain":  # from random weights: its parent lent the architecture only
            break
        parents = meta.parent_names
        if parents and not store.exists("versions", parents[0]):
            raise FitError(f"{current} started from {parents[0]}, which is not a version in this store, so the curve "
                           "before it is unknown and the loss law cannot be fitted")
        current = parents[0] if parents else None
    return chain[::-1]


def _lrs(meta: VersionRecord) -> tuple[np.ndarray, int]:
    """Each step's LR and the warmup's length; none for a version that trained no step (an average, an EMA)."""
    if meta.steps == 0:
        return np.zeros(0), 0
    schedule = validate_schedule(meta.schedule, f"{meta.name}'s schedule").build(meta.steps, meta.batch_tokens)
    return np.array(schedule.lrs()), schedule.events.get("warmup_end", 0)


def _heldout_key(store: Store, run: str) -> str:
    """The key a run logged its held-out losses under: `eval`, unless its run file renamed the evaluator."""
    try:
        evaluators = json.loads((store.path("runs", run) / "run.json").read_text())["config"].get("evaluations") or []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        evaluators = []
    return next((e.get("name", "eval") for e in evaluators if isinstance(e, dict) and e.get("kind") == "heldout"), "eval")


def read_history(store: Store, name: str) -> History:
    """`name`'s history: every run of its lineage, one after the other. A run's step-0 evaluation measures the
    weights it starts from (the parent's last, or an average of them) with its own evaluation, so it stands in
    for the parent's last point at that step."""
    chain = _chain(store, name)
    lrs, points, offset = [], {}, 0
    warmup = 0
    for k, meta in enumerate(chain):
        run_lrs, run_warmup = _lrs(meta)
        if k == 0:
            warmup = run_warmup
        path, key = store.path("runs", meta.name) / "metrics.jsonl", _heldout_key(store, meta.name)
        for row in read_metrics(path) if path.is_file() and meta.steps else []:
            if isinstance(row.get(key), dict) and isinstance(row.get("step"), int):
                at = offset + row["step"]
                for corpus, loss in row[key].items():
                    if isinstance(loss, (int, float)):
                        seen = points.setdefault(corpus, [])
                        if seen and seen[-1][0] == at:
                            seen.pop()
                        seen.append((at, float(loss)))
        lrs.append(run_lrs)
        offset += meta.steps
    return History([m.name for m in chain], np.concatenate(lrs), warmup, points)
