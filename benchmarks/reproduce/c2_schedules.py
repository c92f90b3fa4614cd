"""Study 2 in the converged regime: Ibrahim et al.'s infinite schedule against re-warming and no re-warm.

Ibrahim et al. 2024 (recipes.md §1, §5) define the infinite schedule as: warmup, a cooldown to a constant LR
below the peak, that constant for as long as data comes, and an anneal only when a release is cut; a new task
continues at the constant from the checkpoint before the anneal (weights and optimizer state). Their claim:
it forgets less than re-warming and re-decaying (cosine) while adapting as well, and no re-warm (holding the
floor) forgets least and adapts worst.

Tasks: A = `cv-prose` (pre-training), then the measured weak shift, then the strong one (regime.py's shift
table; manual pages and Python source, named by their gap, never by what they are). No replay: the
schedule alone decides what is learned and forgotten.

Every arm starts from the same task-1 run: the infinite pre-training of the regime's length, a main path
`c2-inf-a-trunk` (1% warmup to the peak 2e-3, cosine cooldown over 60% to the constant (peak + floor)/2,
held) and its release `c2-inf-a`, an exponential anneal from the constant to the floor 0.1·peak over the
last 10% of the steps. Equal floors: every arm ends at 2e-4. Then per task, the same steps in every arm:
- `infinite`: the main path continues at the constant (weights + AdamW state) for 90% of the steps, and the
  task's release anneals off it exponentially to the floor over the other 10%; the next task continues the
  main path, not the release;
- `cosine`: the last release's weights, re-warm to the peak and cosine to the floor (`--recipe cosine --lr 2e-3`);
- `constant`: the last release's weights at the floor, no re-warm (`--recipe constant --lr 2e-4`).
The task-1 release `c2-inf-a` gets the regime's convergence check itself (it is not `cv-base`).
Seeds vary the updates' data order (the task-1 run is shared). Forgetting of task k after task t is the rise
of its held-out loss since the arm's model right after task k.

    python benchmarks/reproduce/c2_schedules.py [--seeds 0 1 2]

Resumable: a finished run is never run again. Writes docs/results/c02_schedules.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c1_replay import measured_shifts  # noqa: E402
from common import ensure, heldout, say  # noqa: E402
from corpora import PROSE, TOKENIZER  # noqa: E402
from regime import REGIME, begin, release_check  # noqa: E402
from stats import at_most, difference, gap_cell, summary  # noqa: E402

from renewlm.store import Store  # noqa: E402
from renewlm.train.config import RunConfig, validate_run  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.switch import branch_config  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402

STUDY = "c02_schedules"
ARMS = ("infinite", "cosine", "constant")
PEAK = REGIME.peak_lr
FLOOR = 0.1 * PEAK  # the cosine recipe's floor, and every arm's
CONST = (PEAK + FLOOR) / 2  # the infinite schedule's default constant
ANNEAL_SHARE = 0.1  # of each task's steps: the release's anneal (the rest is the main path)
TRUNK1, RELEASE1 = "c2-inf-a-trunk", "c2-inf-a"


def anneal(name: str, trunk: RunConfig, steps: int) -> RunConfig:
    """The release off `trunk`: its weights and AdamW state, an exponential anneal from the constant to the floor."""
    branch = branch_config(name, trunk, steps / trunk.total_steps)
    schedule = {"name": "branch", "start_lr": CONST, "min_lr": FLOOR, "decay_fraction": 1.0, "decay_shape": "exp"}
    return validate_run({**branch.model_dump(mode="json"), "schedule": schedule, "steps": steps}, f"release {name}")


def split(steps: int) -> tuple[int, int]:
    """A task's steps as the main path's and the anneal's."""
    annealed = max(2, round(ANNEAL_SHARE * steps))
    return steps - annealed, annealed


def task_one(store: Store) -> dict:
    """The infinite pre-training on A and its release, and the release's convergence check."""
    main_steps, anneal_steps = split(REGIME.base_steps)
    trunk = validate_run({
        "name": TRUNK1, "preset": REGIME.preset, "tokenizer": TOKENIZER, "kind": "trunk",
        "mixture": {"phases": [{"corpora": {PROSE: 1.0}}]},
        "schedule": {"name": "infinite", "peak_lr": PEAK, "min_lr": FLOOR},
        "steps": main_steps, "seed": 0, **REGIME.run_shape(),
    }, TRUNK1)
    ensure(store, trunk)
    ensure(store, anneal(RELEASE1, trunk, anneal_steps))
    return release_check(store, RELEASE1)


def arm_sequence(store: Store, arm: str, tasks: list[str], seed: int) -> list[str]:
    """The arm's model after each task: the task-1 release, then one per later task."""
    models, trunk = [RELEASE1], TRUNK1
    for t, corpus in enumerate(tasks[1:], start=2):
        name = f"c2-{arm}-s{seed}-t{t}"
        shape = REGIME.run_shape()
        if arm == "infinite":
            main_steps, anneal_steps = split(REGIME.update_steps)
            cfg = update_config(store, UpdateRequest(name=f"{name}-trunk", parent=trunk, data=[corpus], lr=CONST, steps=main_steps,
                                                     seed=seed, **shape), kind="trunk")
            ensure(store, cfg)
            ensure(store, anneal(name, cfg, anneal_steps))
            trunk = cfg.name
        else:
            lr = PEAK if arm == "cosine" else FLOOR
            ensure(store, update_config(store, UpdateRequest(name=name, parent=models[-1], data=[corpus], recipe=arm, lr=lr,
                                                             steps=REGIME.update_steps, seed=seed, **shape)))
        models.append(name)
    return models


MARGIN = 0.02  # "as well": within the paper's 0.02 of the loss, the whole interval


def verdicts(after: dict, tasks: list[str], converged: bool) -> dict:
    """After the last task, paired by seed: forgetting of A and adaptation to the last task (its held-out loss),
    infinite and constant each against cosine, and constant against infinite. Each check is an interval's
    verdict (None with one seed), and none is read unless the task-1 release passed its convergence check."""
    def paired(arm: str, other: str, what: str) -> dict:
        pick = (lambda r: r["forgetting"][tasks[0]]) if what == "forgetting" else (lambda r: r["adaptation"])
        return difference(pick(after[arm][-1])["values"], pick(after[other][-1])["values"], paired=True)

    def lower(d: dict) -> bool | None:
        return None if d["high"] is None else d["high"] < 0

    pairs = {(a, b): {w: paired(a, b, w) for w in ("forgetting", "adaptation")}
             for a, b in (("infinite", "cosine"), ("constant", "cosine"), ("constant", "infinite"))}
    inf, con, con_inf = pairs["infinite", "cosine"], pairs["constant", "cosine"], pairs["constant", "infinite"]
    checks = {
        "infinite_forgets_less": lower(inf["forgetting"]),
        "infinite_adapts_as_well": at_most(inf["adaptation"], MARGIN),
        "constant_forgets_least": None if lower(con["forgetting"]) is None else lower(con["forgetting"]) and lower(con_inf["forgetting"]),
        "constant_adapts_worst": None if con["adaptation"]["low"] is None
        else con["adaptation"]["low"] > 0 and con_inf["adaptation"]["low"] > 0,
    }
    decided = converged and None not in checks.values()
    return {
        **{f"{a}_minus_{b}": d for (a, b), d in pairs.items()}, "margin": MARGIN, "checks": checks, "decided": decided,
        "reproduced": {k: (v if decided else None) for k, v in checks.items()},
    }


def main() -> None:
    study = begin(STUDY, __doc__)  # the shifts are measured on cv-base
    store, args = study.store, study.args
    shifts = measured_shifts(store)
    tasks = [PROSE, shifts["weak"], shifts["strong"]]
    check = task_one(store)
    models = {arm: {s: arm_sequence(store, arm, tasks, s) for s in args.seeds} for arm in ARMS}
    names = list(dict.fromkeys(m for by_seed in models.values() for seq in by_seed.values() for m in seq))
    losses = heldout(store, names, tasks)
    after = {}
    for arm in ARMS:
        rows = []
        for t in range(len(tasks)):
            at = [models[arm][s][t] for s in args.seeds]
            rows.append({
                "task": tasks[t], "models": at,
                "loss": {c: summary([losses[m][c] for m in at]) for c in tasks},
                "adaptation": summary([losses[m][tasks[t]] for m in at]),
                "forgetting": {tasks[k]: summary([losses[models[arm][s][t]][tasks[k]] - losses[models[arm][s][k]][tasks[k]] for s in args.seeds])
                               for k in range(t)},
            })
        after[arm] = rows
        last = rows[-1]
        say(f"{arm:>9} after task 3: adaptation {last['adaptation']['mean']:.4f}, forgetting of A {last['forgetting'][tasks[0]]['mean']:+.4f}, "
            f"of task 2 {last['forgetting'][tasks[1]]['mean']:+.4f}")
    verdict = verdicts(after, tasks, check["converged"])
    for pair in ("infinite_minus_cosine", "constant_minus_cosine", "constant_minus_infinite"):
        v = verdict[pair]
        say(f"{pair.replace('_', ' ')}: forgetting of A {gap_cell(v['forgetting'], 4)}, adaptation {gap_cell(v['adaptation'], 4)}")
    say(f"checks: {verdict['checks']}; " + ("decided" if verdict["decided"] else "not decided (one seed, or task 1 not converged)"))
    study.write({"task_one_check": check, "tasks": tasks, "lr": {"peak": PEAK, "const": CONST, "floor": FLOOR},
                 "anneal_share": ANNEAL_SHARE, "steps": {"task_one": REGIME.base_steps, "per_task": REGIME.update_steps},
                 "after_task": after, "verdict": verdict})


if __name__ == "__main__":
    main()
