"""The sweep record, `sweeps/NAME/sweep.json`: built from the versions' own records, never from memory.

Every number of a point (its held-out losses, tokens, FLOPs, the trunk a decay branched off) is read
from the point's `version.json`, so the record is the same whether the points ran here, one after
another, or on a cluster from emitted run files (`--collect`). The format is in docs/sweeps.md.
"""

from __future__ import annotations

from collections.abc import Callable

from renewlm.errors import ConfigError
from renewlm.store import Store, read_json, write_json
from renewlm.sweep.plan import (
    Point,
    SweepSettings,
    duration_points,
    lr_points,
    repeat_points,
)
from renewlm.train.run import config_changes
from renewlm.train.run_record import read_identity
from renewlm.versions import VersionRecord, read_version

FORMAT = 1
RECORD = "sweep.json"


def record_path(store: Store, name: str):
    return store.path("sweeps", name) / RECORD


def read_record(store: Store, name: str) -> dict | None:
    path = record_path(store, name)
    return read_json(path) if path.is_file() else None


def save_record(store: Store, name: str, record: dict) -> None:
    write_json(record_path(store, name), record)


def new_record(name: str, s: SweepSettings) -> dict:
    return {"format": FORMAT, "name": name, "parent": s.parent, "settings": s.as_dict(),
            "corpora": {c: empty_entry() for c in s.data}, "suggested_mixture": None, "cost": None,
            "progress": {"done": 0, "planned": 0}, "evaluations": {}}


def empty_entry() -> dict:
    return {"lrs": [], "best_lr": None, "repeats": [], "spread": None, "trunks": [], "durations": [], "best_tokens": None,
            "characterization": None, "in_mixture": None, "reason": None, "cost": None}


def _same_run(store: Store, p: Point, meta: VersionRecord) -> bool:
    """Whether version `p.name` was written by this point's config (not by another sweep or by hand)."""
    want = p.cfg.model_dump(mode="json")
    folder = store.path("runs", p.name)
    identity = read_identity(folder)
    if identity is not None:
        return not config_changes(identity["config"], p.cfg)
    # The run folder was removed (it is only needed to resume): compare what the version records of it.
    parents = [x.name for x in meta.parents]
    return meta.mixture == want["mixture"] and meta.schedule == want["schedule"] and parents == [p.cfg.parent]


def point_result(store: Store, p: Point) -> dict | None:
    """A finished point's numbers from its version record; None while its version does not exist."""
    if not store.exists("versions", p.name):
        return None
    meta = read_version(store, p.name)
    if not _same_run(store, p, meta):
        raise ConfigError(
            f"version {p.name!r} exists but was not written by this sweep's run of that name; "
            f"remove it with `renewlm rm {p.name}` or give the sweep another name"
        )
    losses = meta.losses or {}
    return {"version": p.name, "loss": losses.get(p.corpus), "losses": losses, "tokens": meta.tokens,
            "flops": meta.flops, "trunk": meta.trunk}


def score(result: dict) -> float:
    """What a sweep's choices are made by: the held-out loss on its target where it has one, else on the point's corpus."""
    return result["loss"] if "target" not in result else result["target"]


def corpus_entry(store: Store, name: str, s: SweepSettings, corpus: str,
                 target_loss: Callable[[str], float] | None = None) -> tuple[dict, list[list[Point]], list[dict]]:
    """The corpus's entry as far as its points have finished, the groups of points that can run now
    (each group in order; the groups are independent of each other), and the finished points' results.
    `target_loss(version)`: the held-out loss on the sweep's `--target` (None without one), which then makes
    the choices of LR, spread and best duration (`target` beside each point's own `loss`)."""
    def result(p: Point) -> dict | None:  # a trunk segment is no choice's point: its decay is
        r = point_result(store, p)
        return r if r is None or target_loss is None or p.stage == "trunk" else {**r, "target": target_loss(p.name)}

    def numbers(r: dict | None) -> dict:
        return {"loss": r and r["loss"]} if target_loss is None else {"loss": r and r["loss"], "target": r and r["target"]}

    entry = empty_entry()
    stage1 = lr_points(store, name, s, corpus)
    results = [result(p) for p in stage1]
    entry["lrs"] = [{"lr": lr, "version": p.name, **numbers(r)} for lr, p, r in zip(s.lrs, stage1, results)]
    groups = [[p] for p, r in zip(stage1, results) if r is None]
    done = [r for r in results if r is not None]
    if len(done) < len(stage1):
        return entry, groups, done
    best = min(range(len(stage1)), key=lambda i: score(results[i]))  # the first of equal losses
    best_lr = entry["best_lr"] = s.lrs[best]

    repeats = repeat_points(store, name, s, corpus, best_lr)
    rep = [result(p) for p in repeats]
    entry["repeats"] = [{"seed": p.cfg.seed, "version": p.name, **numbers(r)} for p, r in zip(repeats, rep)]
    groups += [[p] for p, r in zip(repeats, rep) if r is None]
    done += [r for r in rep if r is not None]
    if all(r is not None for r in rep):
        losses = [score(results[best]), *map(score, rep)]
        entry["spread"] = max(losses) - min(losses)

    chain = duration_points(store, name, s, corpus, best_lr)
    out = [result(p) for p in chain]
    todo = [p for p, r in zip(chain, out) if r is None]
    if todo:
        groups.append(todo)
    done += [r for r in out if r is not None]
    trunk_tokens = 0
    for trunk, decay, t, d in zip(chain[::2], chain[1::2], out[::2], out[1::2]):
        trunk_tokens = trunk_tokens + t["tokens"] if t is not None and trunk_tokens is not None else None
        entry["trunks"].append({"version": trunk.name, "tokens": t and t["tokens"], "flops": t and t["flops"],
                                "data_offset": trunk.cfg.data_offset})
        entry["durations"].append({
            "tokens": trunk.cfg.data_offset * trunk.cfg.seq_len + trunk.cfg.total_steps * trunk.cfg.batch_tokens,
            "trunk": trunk.name, "version": decay.name, **numbers(d),
            "trunk_tokens": trunk_tokens, "branched_from": d and d["trunk"], "decay_tokens": d and d["tokens"],
            "decay_flops": d and d["flops"], "losses": d and d["losses"],
        })
    if all(r is not None for r in out):
        entry["cost"] = duration_cost(entry)
        if entry["spread"] is not None:
            entry["best_tokens"] = best_tokens(entry["durations"], entry["spread"])
    return entry, groups, done


def best_tokens(durations: list[dict], spread: float) -> int:
    """The shortest duration whose loss (on the target, where the sweep has one) is within the noise (spread)
    of the lowest: more tokens that buy no measurable gain are not worth their compute, nor a larger share of a mixture."""
    lowest = min(map(score, durations))
    return next(d["tokens"] for d in durations if score(d) <= lowest + spread)


def duration_cost(entry: dict) -> dict:
    """The duration sweep as run (one trunk cut into segments, plus a decay off each) against K
    independent runs, each its duration plus its decay from the parent."""
    trunks, durations = entry["trunks"], entry["durations"]
    per_token = durations[0]["decay_flops"] / durations[0]["decay_tokens"]  # the same model and seq_len throughout
    tokens = sum(t["tokens"] for t in trunks) + sum(d["decay_tokens"] for d in durations)
    flops = sum(t["flops"] for t in trunks) + sum(d["decay_flops"] for d in durations)
    independent = sum(d["trunk_tokens"] + d["decay_tokens"] for d in durations)
    return {"tokens": tokens, "flops": flops, "independent_tokens": independent, "independent_flops": independent * per_token}


def total_cost(entries: dict[str, dict], finished: list[dict]) -> dict | None:
    """The duration sweeps of every corpus together, and everything the sweep ran (`all_*`)."""
    costs = [e["cost"] for e in entries.values() if e["cost"]]
    if not costs:
        return None
    out = {k: sum(c[k] for c in costs) for k in ("tokens", "flops", "independent_tokens", "independent_flops")}
    out["saving"] = 1 - out["flops"] / out["independent_flops"]
    out["all_tokens"] = sum(r["tokens"] for r in finished)
    out["all_flops"] = sum(r["flops"] for r in finished)
    return out
