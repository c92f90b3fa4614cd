"""A sweep: run its points here one after another, or emit them for a Slurm job array and collect.

Whichever way the points run, the record is rebuilt from the versions they wrote (record.py) and saved
with one rename after every finished point, so an interrupted sweep loses at most the point in
progress, and that one resumes from its own checkpoint when the command runs again.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import yaml

from renewlm.errors import ConfigError
from renewlm.eval.compare import check, evaluate_versions
from renewlm.store import Store, check_output, write_json
from renewlm.sweep.characterize import (
    characterize,
    evaluate,
    mixture_choice,
    suggested_mixture,
)
from renewlm.sweep.plan import (
    DEFAULT_DURATION_MULTIPLES,
    Point,
    SweepSettings,
    check_settings,
)
from renewlm.sweep.record import (
    RECORD,
    corpus_entry,
    new_record,
    read_record,
    save_record,
    total_cost,
)
from renewlm.train.loop import (
    train,  # looked up at call time, so tests can stand in for it
)
from renewlm.versions import lineage_corpora, read_version

Say = Callable[[str], None]


def resolve_settings(store: Store, name: str, given: dict) -> SweepSettings:
    """A new sweep's settings from the flags (defaults filled in), or an existing sweep's recorded ones;
    a flag that contradicts the record is refused, so a re-run cannot silently change the sweep."""
    record = read_record(store, name) if store.exists("sweeps", name) else None
    given = {k: v for k, v in given.items() if v is not None}
    unknown = set(given) - {f.name for f in fields(SweepSettings)}
    if unknown:
        raise ValueError(f"unknown sweep settings {sorted(unknown)}")
    if record is not None:
        recorded = SweepSettings(**record["settings"])
        changed = sorted(k for k, v in given.items() if v != getattr(recorded, k))
        if changed:
            flags = ", ".join("--" + k.replace("_", "-").replace("parent", "from") for k in changed)
            raise ConfigError(
                f"sweep {name!r} was started with other {flags} ({store.path('sweeps', name)}/sweep.json); "
                f"leave the flags out to resume it as recorded, or give the new sweep another name"
            )
        s = recorded
    else:
        if "parent" not in given or not given.get("data"):
            raise ConfigError(f"sweep {name!r} does not exist yet; start it with --from VERSION and --data CORPUS")
        if "durations" not in given:
            tokens = given.get("tokens", SweepSettings.tokens)
            given["durations"] = [tokens * m for m in DEFAULT_DURATION_MULTIPLES]
        s = SweepSettings(**given)
    check_settings(store, name, s)
    return s


def _open(store: Store, name: str, s: SweepSettings) -> dict:
    """The sweep's record, created (folder and sweep.json at once, through a rename) on first use."""
    if not store.exists("sweeps", name):
        with store.staging("sweeps", name) as tmp:
            write_json(tmp / RECORD, new_record(name, s))
    return read_record(store, name)


def build(store: Store, name: str, s: SweepSettings, record: dict, *, evaluate_now: bool = True,
          say: Say = lambda line: None) -> tuple[dict, list[list[Point]]]:
    """The record as the store stands, and the groups of points that can run now."""
    entries, groups, finished = {}, [], []
    lineage = lineage_corpora(store, s.parent)
    heldout = [c for c in dict.fromkeys([*lineage, *s.data, *([s.target] if s.target else [])]) if store.exists("corpora", c)]
    evaluations = dict(record.get("evaluations") or {})
    targets = dict(record.get("target_losses") or {})

    def target_loss(version: str) -> float:
        """The point's held-out loss on the target: its own run's where it evaluated it, else measured here once."""
        if version not in targets:
            own = read_version(store, version).losses or {}
            targets[version] = own[s.target] if s.target in own else heldout_loss_of(store, s, version, s.target)
        return targets[version]

    for corpus in s.data:
        entry, todo, done = corpus_entry(store, name, s, corpus, target_loss if s.target else None)
        entries[corpus], finished = entry, finished + done
        groups += todo
        if entry["best_tokens"] is None or not evaluate_now:
            continue
        best_lr = next(x["version"] for x in entry["lrs"] if x["lr"] == entry["best_lr"])
        noise = [best_lr, *(r["version"] for r in entry["repeats"])]
        best = next(d["version"] for d in entry["durations"] if d["tokens"] == entry["best_tokens"])
        seq_len = read_version(store, best).seq_len  # the windows the sweep's runs measured
        evaluate(store, s, [s.parent, *noise, best], evaluations, corpora=heldout, seq_len=seq_len, say=say)
        entry["characterization"] = characterize(evaluations[s.parent], evaluations[best], [evaluations[v] for v in noise])
        entry["in_mixture"], entry["reason"] = mixture_choice(corpus, entry["characterization"], lineage, s.target)
    record = {
        **new_record(name, s), "corpora": entries, "evaluations": evaluations, "lineage": lineage,
        **({"target_losses": targets} if s.target else {}),
        "progress": {"done": len(finished), "planned": len(finished) + sum(len(g) for g in groups)},
    }
    if all(e["in_mixture"] is not None for e in entries.values()):
        record["suggested_mixture"] = suggested_mixture(store, s, entries, lineage)
    record["cost"] = total_cost(entries, finished)
    return record, groups


def heldout_loss_of(store: Store, s: SweepSettings, version: str, corpus: str) -> float:
    """A sweep point's held-out loss on a corpus its run did not evaluate, with the windows of its run."""
    plan = check(store, [version], corpora=[corpus], seq_len=read_version(store, version).seq_len, eval_tokens=s.eval_tokens)
    return evaluate_versions(store, plan)["versions"][version]["heldout"][corpus]["loss"]


def run_sweep(store: Store, name: str, s: SweepSettings, say: Say = lambda line: None) -> dict:
    """Run every point not yet done, one at a time, saving the record after each."""
    record = _open(store, name, s)
    with store.lock("sweeps", name):
        while True:
            record, groups = build(store, name, s, record, say=say)
            save_record(store, name, record)
            write_mixture(store, name, record)
            if not groups:
                return record
            point = groups[0][0]
            say(f"sweep {name}: {point.stage} point {point.name} ({record['progress']['done'] + 1} of "
                f"{record['progress']['planned']} known so far)")
            train(point.cfg, store)


def write_mixture(store: Store, name: str, record: dict) -> Path | None:
    """sweeps/NAME/mixture.yaml, ready for a run file's `mixture:` or `renewlm mixture show`."""
    if record["suggested_mixture"] is None:
        return None
    path = store.path("sweeps", name) / "mixture.yaml"
    _write_text(path, yaml.safe_dump(record["suggested_mixture"], sort_keys=False))
    return path


def collect(store: Store, name: str, say: Say = lambda line: None) -> dict:
    """Read the finished points of a sweep run elsewhere into its record."""
    record = read_record(store, name) if store.exists("sweeps", name) else None
    if record is None:
        raise ConfigError(f"there is no sweep named {name!r} in {store.root}; start one with `renewlm sweep {name} --from V --data C`")
    s = SweepSettings(**record["settings"])
    with store.lock("sweeps", name):
        new, _ = build(store, name, s, record, evaluate_now=False)
        if new["progress"]["done"] == 0:
            raise ConfigError(
                f"no point of sweep {name!r} has finished yet (0 of {new['progress']['planned']} points that can run now "
                f"are done); run the emitted job array first, then --collect"
            )
        verify_points(store, new)
        new, _ = build(store, name, s, record, say=say)
        save_record(store, name, new)
        write_mixture(store, name, new)
    return new


def verify_points(store: Store, record: dict) -> None:
    """Check every finished point's version against its manifest: points written on a cluster reach the
    record here, and a damaged one would otherwise be counted (and branched from) as it is."""
    from renewlm.model.load import verify_version

    for entry in record["corpora"].values():
        for point in entry["lrs"] + entry["repeats"] + entry["trunks"] + entry["durations"]:
            if store.exists("versions", point["version"]):
                verify_version(store.path("versions", point["version"]), point["version"])


def emit(store: Store, name: str, s: SweepSettings, folder: Path) -> tuple[list[list[Path]], Path | None]:
    """Run files of every point that can run now and a Slurm job-array script (one task per group,
    each running its runs in order with `renewlm train`). No point runs here."""
    folder = check_output(folder, "--emit", folder=True)
    record = _open(store, name, s)
    _, groups = build(store, name, s, record, evaluate_now=False)
    if not groups:
        return [], None
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    files = []
    for group in groups:
        files.append([])
        for point in group:
            path = folder / f"{point.name}.yaml"
            _write_text(path, yaml.safe_dump(point.cfg.model_dump(mode="json"), sort_keys=False))
            files[-1].append(path)
    script = folder / "sweep.sbatch"
    _write_text(script, slurm_script(name, store, files, folder))
    return files, script


def slurm_script(name: str, store: Store, files: list[list[Path]], folder: Path) -> str:
    store_root = shlex.quote(str(store.root))
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote('sweep-' + name)}",
        f"#SBATCH --array=0-{len(files) - 1}",
        f"#SBATCH --output={shlex.quote(str(folder / 'logs' / '%A_%a.out'))}",
        f"# Written by `renewlm sweep {name} --emit`: {sum(map(len, files))} runs in {len(files)} tasks. Submit with",
        f"# `sbatch [--gres=... --time=...] {shlex.quote(str(folder / 'sweep.sbatch'))}`; when they are done,",
        f"# `renewlm sweep {name} --collect --store {store_root}`, then --emit again for the next stage.",
        "# A task's runs depend on each other (trunk segments, the decays off them), so they run in order.",
        "set -euo pipefail",
        f"STORE={store_root}",
        'case "${SLURM_ARRAY_TASK_ID:?submit this script with sbatch: it is a job array}" in',
    ]
    for i, group in enumerate(files):
        runs = " && ".join(f'renewlm train {shlex.quote(str(p))} --store "$STORE"' for p in group)
        lines.append(f"  {i}) {runs} ;;")
    lines += ['  *) echo "no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 1 ;;', "esac", ""]
    return "\n".join(lines)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
