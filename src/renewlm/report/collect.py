"""What the report shows, read from the store's records and metrics only: version records and their
`evaluations.json`, each run's `metrics.jsonl`, each sweep's `sweep.json`, and the ledger.

Nothing here loads a model or a corpus, so a store of many versions reads in well under a second
(benchmarks/report_screenshot.py measures the whole report).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from renewlm.errors import StoreError
from renewlm.store import Store
from renewlm.train.metrics import scan_metrics
from renewlm.versions import VersionRecord, cost, list_versions, read_evaluations
from renewlm.versions.lineage import display_tree

# A figure a few hundred pixels wide shows no more than this many points per line; longer runs are
# thinned by an even stride (the last step always kept), so a million-step run draws as fast as a short one.
MAX_POINTS = 1500


@dataclass
class RunCurves:
    """One run's metrics.jsonl, thinned for drawing."""

    name: str
    has_version: bool
    steps: list[dict]  # training steps: tokens, loss, lr
    evals: list[dict]  # held-out evaluations: tokens, eval {corpus: loss}
    total_steps: int
    dropped_lines: int = 0


@dataclass
class Sweep:
    name: str
    record: dict | None
    problem: str | None = None


@dataclass
class ReportData:
    """Everything one report shows, keyed by version name."""

    store: Store
    versions: dict[str, VersionRecord]  # name -> version.json, the versions shown
    evaluations: dict[str, dict]  # name -> evaluations.json ({} when never evaluated)
    costs: dict[str, dict]  # name -> renewlm.versions.cost(...)
    runs: list[RunCurves]
    sweeps: list[Sweep]
    under: dict[str, str | None] = field(default_factory=dict)  # display parent in the version tree


def collect(store: Store, versions: list[str] | None = None) -> ReportData:
    """Read what the report needs; an empty store or an unknown version is refused in one sentence."""
    every = {m.name: m for m in list_versions(store)}
    if not every:
        raise StoreError(
            f"the store {store.root} holds no versions yet, so there is nothing to report; run `renewlm demo`, "
            f"or `renewlm train RUN.yaml` (or `renewlm import`), first"
        )
    if versions:
        unknown = [v for v in dict.fromkeys(versions) if v not in every]
        if unknown:
            raise StoreError(
                f"--versions names {', '.join(map(repr, unknown))}, not in the store {store.root} "
                f"(it has: {', '.join(every)}); check the names or pass --store"
            )
        shown = {v: every[v] for v in dict.fromkeys(versions)}
    else:
        shown = every
    runs = [r for name in store.names("runs") if (versions is None or name in shown) and (r := read_run(store, name, name in every))]
    sweeps = [s for name in store.names("sweeps") if (s := read_sweep(store, name)) and _sweep_shown(s, shown, versions)]
    return ReportData(
        store=store,
        versions=shown,
        evaluations={v: read_evaluations(store, v) for v in shown},
        costs={v: cost(store, v, every) for v in shown},
        runs=runs,
        sweeps=sweeps,
        under=display_tree(store, shown),
    )


def _sweep_shown(sweep: Sweep, shown: dict, versions: list[str] | None) -> bool:
    # With --versions, a sweep belongs to the report when it started from one of the versions asked for.
    return versions is None or (sweep.record or {}).get("parent") in shown


def read_run(store: Store, name: str, has_version: bool) -> RunCurves | None:
    path = store.path("runs", name) / "metrics.jsonl"
    if not path.is_file():
        return None
    records, dropped = scan_metrics(path)
    steps = [r for r in records if isinstance(r.get("loss"), (int, float)) and "tokens" in r]
    evals = [r for r in records if isinstance(r.get("eval"), dict) and r["eval"] and "tokens" in r]
    if not steps and not evals:
        return None
    total = len(steps)
    return RunCurves(name, has_version, thin(steps), thin(evals), total, dropped)


def thin(records: list[dict], limit: int = MAX_POINTS) -> list[dict]:
    """At most `limit` records at an even stride, the last one always kept."""
    if len(records) <= limit:
        return records
    stride = -(-len(records) // limit)
    kept = records[::stride]
    return kept if kept[-1] is records[-1] else [*kept, records[-1]]


def read_sweep(store: Store, name: str) -> Sweep:
    """A sweep's record; a sweep still running (no sweep.json yet) or a damaged one is shown as a note."""
    path = store.path("sweeps", name) / "sweep.json"
    if not path.is_file():
        return Sweep(name, None, f"it has no sweep.json yet; finish it with `renewlm sweep {name} ...` (or `--collect`)")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Sweep(name, None, f"{path} cannot be read ({e}); run the sweep's command again to rewrite it")
    if not isinstance(record, dict):
        return Sweep(name, None, f"{path} is not a sweep record (a JSON object); run the sweep's command again")
    return Sweep(name, record)


def outside_parents(meta: VersionRecord, shown: dict) -> list[str]:
    """Parents that are not versions shown in the report (a folder a run started from, or left out)."""
    return [p for p in meta.parent_names if p not in shown]


def final_losses(data: ReportData) -> tuple[dict[str, dict[str, float]], dict[str, set[str]], list[str]]:
    """(version -> corpus -> loss, version -> corpora whose loss is the run's own, corpora in order).

    `renewlm eval` measured every version on the same windows, so its numbers come first; a corpus it
    never measured falls back on the run's final held-out loss in version.json (flagged as such).
    """
    losses: dict[str, dict[str, float]] = {}
    from_record: dict[str, set[str]] = {}
    corpora: dict[str, None] = {}
    for v, meta in data.versions.items():
        evaluated = {c: e["loss"] for c, e in (data.evaluations[v].get("heldout") or {}).items() if isinstance(e, dict) and _number(e.get("loss"))}
        recorded = {c: x for c, x in (meta.losses or {}).items() if _number(x) and c not in evaluated}
        if evaluated or recorded:
            losses[v] = {**evaluated, **recorded}
            from_record[v] = set(recorded)
            corpora.update(dict.fromkeys(losses[v]))
    return losses, from_record, list(corpora)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not math.isnan(x)
