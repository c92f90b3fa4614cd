"""Study 4: Parmar et al.'s reuse recipe, where to switch blends (recipes.md §2).

Continue the base `rp-a` (200 cosine steps on A) with the `reuse` schedule: no warmup, cosine from
the base's floor (0.1·peak) down to 1/100 of it. The run reads a general blend, then a second blend
from the step where the LR first reaches start/R, for R = 2, 5, 10, 50, against no switch (the
general blend to the end).

Blends, by analogy with the paper's general blend and QA blend (= general blend + 10% QA):
- general blend: A and B, half each: the pre-training data and the new prose, up-weighted (the paper
  up-weights high-quality sources over their share in pre-training);
- second blend: the general blend at 90% + 10% code: the data the second blend adds.
The target metric is the held-out loss on code (the paper's target is the QA-style evaluations the
second blend is for); beside it, the average over A, B and code, the broad picture of forgetting.

Run: python benchmarks/reproduce/04_reuse.py [--size tiny] [--seeds 0 1]
"""

from __future__ import annotations

import time

from common import BASE, CODE, PROSE_A, PROSE_B, arguments, base, ensure, figure_path, save_figure, heldout, mean_spread, say, write_results

from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config

STUDY = "s04_reuse"
CORPORA = [PROSE_A, PROSE_B, CODE]
GENERAL = {PROSE_A: 0.5, PROSE_B: 0.5}
ADDED, ADDED_SHARE = CODE, 0.1  # Parmar et al.: QA blend = general blend + 10% QA data
SECOND = {**{c: w * (1 - ADDED_SHARE) for c, w in GENERAL.items()}, ADDED: ADDED_SHARE}
RATIOS = [2, 5, 10, 50]  # switch at LR = start/R; the paper found 5 best


def data_items(blend: dict[str, float]) -> list[str]:
    """A blend as `--data` / `--then` items, NAME:WEIGHT."""
    return [f"{corpus}:{weight:g}" for corpus, weight in blend.items()]


def arm(store, size, ratio: int | None, seed: int) -> dict:
    """One run: `renewlm update NAME --from rp-a --recipe reuse --data GENERAL [--then SECOND --switch-at R]`."""
    name = f"s4-{'none' if ratio is None else f'r{ratio}'}-s{seed}"
    switch = {} if ratio is None else {"then": data_items(SECOND), "switch_at": ratio}
    cfg = update_config(store, UpdateRequest(name=name, parent=BASE, data=data_items(GENERAL), recipe="reuse",
                                             steps=size.update_steps, seed=seed, **switch))
    say(f"switch at {'never' if ratio is None else f'start/{ratio}'}, seed {seed} -> {name}")
    ensure(store, cfg)
    schedule = cfg.schedule.build(cfg.total_steps, cfg.batch_tokens)
    step = schedule.events["switch"] if ratio is not None else None
    return {"name": name, "ratio": ratio, "seed": seed, "switch_step": step, "steps": cfg.total_steps,
            "switch_lr": None if step is None else schedule.lr(step), "start_lr": cfg.schedule.start_lr}


def summarize(arms: list[dict], losses: dict) -> dict:
    """Per switch ratio (None: no switch): target loss, each corpus, the average, mean ± spread over seeds."""
    def average(name: str) -> float:
        return sum(losses[name][c] for c in CORPORA) / len(CORPORA)

    # The same seed reads the same general-blend batches up to the switch in every arm, so the change
    # against no switch is taken per seed: it cancels most of the data-order noise the seeds share.
    baseline = {a["seed"]: a["name"] for a in arms if a["ratio"] is None}
    out = {}
    for ratio in [None, *RATIOS]:
        runs = [a for a in arms if a["ratio"] == ratio]
        out["none" if ratio is None else str(ratio)] = {
            "ratio": ratio,
            "switch_step": runs[0]["switch_step"],
            "target": mean_spread([losses[a["name"]][ADDED] for a in runs]),
            "average": mean_spread([average(a["name"]) for a in runs]),
            "loss": {c: mean_spread([losses[a["name"]][c] for a in runs]) for c in CORPORA},
            "target_vs_no_switch": mean_spread([losses[a["name"]][ADDED] - losses[baseline[a["seed"]]][ADDED] for a in runs]),
            "average_vs_no_switch": mean_spread([average(a["name"]) - average(baseline[a["seed"]]) for a in runs]),
        }
    return out


def fmt(x: dict) -> str:
    return f"{x['mean']:.4f}±{x['spread']:.4f}"


def table(results: dict, steps: int, base_losses: dict) -> None:
    say(f"\nheld-out loss after {steps} reuse steps from {BASE}, mean ± half-range over seeds")
    say("(Δ: the change against no switch with the same seed)")
    say(f"{'switch at':<12}{'step':>6}{'code (target)':>17}{'Δ code':>17}{'A':>17}{'B':>17}{'avg A,B,code':>17}{'Δ avg':>17}")
    say(f"{BASE + ' (start)':<12}{'':>6}{base_losses[CODE]:>17.4f}{'':>17}{base_losses[PROSE_A]:>17.4f}"
        f"{base_losses[PROSE_B]:>17.4f}{sum(base_losses.values()) / len(base_losses):>17.4f}")
    for r in results.values():
        label = "no switch" if r["ratio"] is None else f"start/{r['ratio']}"
        step = "" if r["switch_step"] is None else str(r["switch_step"])
        say(f"{label:<12}{step:>6}{fmt(r['target']):>17}{fmt(r['target_vs_no_switch']):>17}{fmt(r['loss'][PROSE_A]):>17}"
            f"{fmt(r['loss'][PROSE_B]):>17}{fmt(r['average']):>17}{fmt(r['average_vs_no_switch']):>17}")


def plot(results: dict, path) -> None:
    """Target loss (code) and the three-corpus average against the switch ratio, no-switch as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, title in ((axes[0], "target", "target: held-out loss on code (the data the second blend adds)"),
                              (axes[1], "average", "average held-out loss over A, B and code")):
        points = [results[str(r)][metric] for r in RATIOS]
        ax.errorbar(RATIOS, [p["mean"] for p in points], yerr=[p["spread"] for p in points], fmt="o-", capsize=4,
                    label="switch at LR = start/R")
        for p, r in zip(points, RATIOS):
            ax.plot([r] * len(p["values"]), p["values"], ".", color="tab:blue", alpha=0.4)
        none = results["none"][metric]
        ax.axhline(none["mean"], color="tab:red", ls="--", label="no switch (general blend only)")
        ax.axhspan(none["mean"] - none["spread"], none["mean"] + none["spread"], color="tab:red", alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks(RATIOS, [f"/{r}" for r in RATIOS])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("switch ratio R (Parmar et al.: /5 best)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out loss")
    axes[0].legend(fontsize=8)
    fig.suptitle("Reuse recipe: when to switch from the general blend to general + 10% code (bars: seed range)", fontsize=10)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.split("\n")[0])
    store, size = args.store, args.size
    base(store, size)
    arms = [arm(store, size, ratio, seed) for seed in args.seeds for ratio in [None, *RATIOS]]
    say(f"held-out evaluation of {len(arms) + 1} versions on {', '.join(CORPORA)}")
    losses = heldout(store, [BASE, *(a["name"] for a in arms)], CORPORA)
    results = summarize(arms, losses)
    table(results, size.update_steps, losses[BASE])
    plot(results, figure_path(STUDY))
    write_results(STUDY, args, {
        "general_blend": GENERAL, "second_blend": SECOND, "target": ADDED, "ratios": RATIOS, "arms": arms,
        "losses": losses, "results": results,
    }, started)


if __name__ == "__main__":
    main()
