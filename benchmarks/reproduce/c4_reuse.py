"""Study 4 in the converged regime: where Parmar et al.'s reuse recipe switches blends (recipes.md §2).

Claim (Parmar et al. 2024, 15B): continuing a heavily trained base with no warmup, a cosine from the pretraining
floor to 1/100 of it, reading a general blend and then a second blend (the general blend + 10% of a small,
distinct set) from the step where the LR reaches start/5 beats switching at start/2, /10 or /50.

Here the base is the regime's `cv-base` (converged on `cv-prose`). The general blend is `cv-prose` and the weak
shift half each (the pre-training data beside new data of the same kind, still being learned); the second blend
is that at 90% and the small, distinct set at 10%: `cv-de`, German manual pages, which neither the base nor the
general blend has seen. Each arm is `renewlm update --recipe reuse --data GENERAL --then SECOND --switch-at R`
for R = 2, 5, 10, 50, and one with no switch, each STEPS = 160 steps (2.6M tokens, 3.8% of the base's 68.8M, as
the paper's 300B continuation was of its 8T pre-training; the regime's 600-step update would be 14%). The score is the
average held-out loss over the three corpora, so the added set counts as one evaluation among three (as the
paper's QA evaluations count beside its general ones), not the whole target; the added set's own loss is
reported beside it. Seeds vary the data order; the base is shared.

Reproduced if, in paired 95% intervals over the seeds, start/5 has the best average or ties the best (an
interval containing 0), and start/2 and start/50 are each worse than start/5 (the interval above 0).

    python benchmarks/reproduce/c4_reuse.py [--seeds 0 1 2]

Resumable: a finished run is never run again. Each arm is about 3.5 minutes idle on 2 cores, so the 15 runs of
three seeds under an hour. Writes docs/results/c04_reuse.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c1_replay import measured_shifts  # noqa: E402
from common import ensure, heldout, say  # noqa: E402
from corpora import GERMAN, PROSE  # noqa: E402
from regime import BASE, REGIME, begin  # noqa: E402
from stats import difference, gap_cell, summary  # noqa: E402

from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402

STUDY = "c04_reuse"
STEPS = 160  # the paper's continuation against its pre-training: 300B of 8T tokens
ADDED, ADDED_SHARE = GERMAN, 0.1  # Parmar et al.: the second blend is the general blend + 10% of the added data
RATIOS = [2, 5, 10, 50]  # switch at LR = start/R; the paper's best is 5
ARMS = ["never", *map(str, RATIOS)]


def blends(weak: str) -> tuple[dict[str, float], dict[str, float]]:
    general = {PROSE: 0.5, weak: 0.5}
    return general, {**{c: w * (1 - ADDED_SHARE) for c, w in general.items()}, ADDED: ADDED_SHARE}


def items(blend: dict[str, float]) -> list[str]:
    """A blend as `--data` / `--then` items, NAME:WEIGHT."""
    return [f"{corpus}:{weight:g}" for corpus, weight in blend.items()]


def arm(store, general: dict, second: dict, ratio: str, seed: int) -> dict:
    name = f"c4-{ratio}-s{seed}"
    switch = {} if ratio == "never" else {"then": items(second), "switch_at": float(ratio)}
    cfg = update_config(store, UpdateRequest(name=name, parent=BASE, data=items(general), recipe="reuse", steps=STEPS,
                                             seed=seed, **switch, **REGIME.run_shape()))
    ensure(store, cfg)
    schedule = cfg.schedule.build(cfg.total_steps, cfg.batch_tokens)
    step = None if ratio == "never" else schedule.events["switch"]  # the schedule marks start/5 either way
    return {"name": name, "ratio": ratio, "seed": seed, "switch_step": step, "steps": cfg.total_steps,
            "start_lr": cfg.schedule.start_lr, "switch_lr": None if step is None else schedule.lr(step),
            "seconds": read_version(store, name).seconds}


def verdict(score: dict[str, list[float]]) -> dict:
    """start/5 against the best arm and against start/2 and start/50, paired by seed."""
    best = min(ARMS, key=lambda a: sum(score[a]) / len(score[a]))
    versus = {a: difference(score[a], score["5"], paired=True) for a in ARMS if a != "5"}
    # best − start/5 is below 0 by its mean; start/5 ties it when the interval reaches 0
    near = True if best == "5" else (None if versus[best]["high"] is None else versus[best]["high"] >= 0)
    checks = {"five_best_or_tied": near,
              **{f"{r}_worse_than_five": None if versus[r]["low"] is None else versus[r]["low"] > 0 for r in ("2", "50")}}
    decided = None not in checks.values()
    return {"best": best, "minus_five": versus, "checks": checks, "decided": decided,
            "reproduced": all(checks.values()) if decided else None}


def main() -> None:
    study = begin(STUDY, __doc__)
    store, args = study.store, study.args
    weak = measured_shifts(store)["weak"]
    corpora = [PROSE, weak, ADDED]
    general, second = blends(weak)
    runs = [arm(store, general, second, ratio, seed) for seed in args.seeds for ratio in ARMS]
    losses = heldout(store, [BASE, *(r["name"] for r in runs)], corpora)
    by_arm = {a: [r for r in runs if r["ratio"] == a] for a in ARMS}  # seeds in the same order in every arm
    score = {a: [sum(losses[r["name"]][c] for c in corpora) / len(corpora) for r in by_arm[a]] for a in ARMS}
    results = {a: {"switch_step": by_arm[a][0]["switch_step"], "average": summary(score[a]),
                   "loss": {c: summary([losses[r["name"]][c] for r in by_arm[a]]) for c in corpora}} for a in ARMS}
    result = verdict(score)
    say(f"average held-out loss over {', '.join(corpora)} (mean ± sd over seeds {args.seeds}); {ADDED} the added set")
    for a in ARMS:
        label = "no switch" if a == "never" else f"start/{a} (step {results[a]['switch_step']})"
        diff = "" if a == "5" else f"; − start/5 {gap_cell(result['minus_five'][a], 4)}"
        say(f"{label:>22}: average {results[a]['average']['mean']:.4f}, {ADDED} {results[a]['loss'][ADDED]['mean']:.4f}{diff}")
    say(f"best: {result['best']}; checks: {result['checks']}; " + ("decided" if result["decided"] else "not decided (one seed)"))
    study.write({"corpora": corpora, "general_blend": general, "second_blend": second, "added": ADDED, "ratios": RATIOS,
                 "steps": STEPS, "runs": runs, "losses": losses, "results": results, "verdict": result})


if __name__ == "__main__":
    main()
