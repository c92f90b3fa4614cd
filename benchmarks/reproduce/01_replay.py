"""Study 1: re-warm, re-decay and replay against re-training on the union (Ibrahim et al. 2024, Table 2).

From the shared base `rp-a` (pre-trained on A), each update continues on B with the `cosine` recipe
(weights only, re-warm to the base's peak LR, re-decay to 0.1·peak) and a share of every batch replayed
from A (compute-equivalent replay: the update's length does not change with the share). Two shifts:
weak (B = rp-prose-b, prose on other modules) and strong (B = rp-code, Python source). The baseline is
`--paradigm retrain` from `rp-a`: random weights on A ∪ B, each weighted by its tokens, for the base's
and the update's tokens together (the union run of the paper).

Paper (405M): 5% replay (weak) and 25% (strong) come within ~0.01-0.02 of the union's average loss at
about half of its tokens. Here the update is half as long as the base, so it costs a third of the union.

    python benchmarks/reproduce/01_replay.py [--size tiny] [--seeds 0 1] [--store DIR]
"""

from __future__ import annotations

import time

from common import (
    BASE,
    CODE,
    PROSE_A,
    PROSE_B,
    arguments,
    base,
    ensure,
    figure_path, save_figure,
    heldout,
    mean_spread,
    say,
    shift_table,
    write_results,
)

from renewlm.store import Store
from renewlm.updates.request import UpdateRequest
from renewlm.updates.retrain import retrain_config
from renewlm.updates.update import update_config
from renewlm.versions import read_version

STUDY = "s01_replay"
FRACTIONS = [0.0, 0.01, 0.05, 0.10, 0.25, 0.50]
SHIFTS = {"weak": PROSE_B, "strong": CODE}
# Ibrahim et al. 2024 §6: the replay each shift needs to match the union run.
RECOMMENDED = {"weak": 0.05, "strong": 0.25}


def update_name(shift: str, fraction: float, seed: int) -> str:
    return f"s1-{shift}-r{round(fraction * 100):02d}-s{seed}"


def union_name(shift: str, seed: int) -> str:
    return f"s1-{shift}-union-s{seed}"


def ensure_update(store: Store, size, shift: str, fraction: float, seed: int) -> str:
    """`renewlm update NAME --from rp-a --data B --replay F --recipe cosine --steps N --seed S`: the
    base's peak LR re-warmed over 1% of the run and re-decayed; replay drawn from A, the base's data."""
    name = update_name(shift, fraction, seed)
    ensure(store, update_config(store, UpdateRequest(
        name=name, parent=BASE, data=[SHIFTS[shift]], replay=fraction, recipe="cosine",
        steps=size.update_steps, seed=seed, **size.run_shape(),
    )))
    return name


def ensure_union(store: Store, size, shift: str, seed: int) -> str:
    """`renewlm update NAME --from rp-a --data B --steps N --paradigm retrain --seed S`: the run config
    `run_update` builds for the retrain paradigm, trained through `ensure` so a finished one is skipped."""
    name = union_name(shift, seed)
    ensure(store, retrain_config(store, UpdateRequest(name=name, parent=BASE, data=[SHIFTS[shift]], paradigm="retrain",
                                                      steps=size.update_steps, seed=seed, **size.run_shape())))
    return name


def summarize(losses: dict[str, dict[str, float]], names: list[str], new: str) -> dict:
    """Loss on A, on B and their average over the seeds' versions (mean ± half range)."""
    a = [losses[n][PROSE_A] for n in names]
    b = [losses[n][new] for n in names]
    return {"A": mean_spread(a), "B": mean_spread(b), "avg": mean_spread([(x + y) / 2 for x, y in zip(a, b)]), "versions": names}


def study_shift(store: Store, size, shift: str, seeds: list[int]) -> dict:
    """Every replay share and the union run for one shift, trained if missing, then evaluated together."""
    updates = {f: [ensure_update(store, size, shift, f, s) for s in seeds] for f in FRACTIONS}
    unions = [ensure_union(store, size, shift, s) for s in seeds]
    say(f"{shift} shift: evaluating {sum(map(len, updates.values())) + len(unions)} versions on A and {SHIFTS[shift]}")
    losses = heldout(store, [*[n for ns in updates.values() for n in ns], *unions], [PROSE_A, SHIFTS[shift]])
    union_tokens = read_version(store, unions[0]).tokens
    rows = []
    for fraction, names in updates.items():
        tokens = read_version(store, names[0]).tokens
        rows.append({"replay": fraction, **summarize(losses, names, SHIFTS[shift]), "tokens": tokens,
                     "tokens_vs_union": tokens / union_tokens})
    union = {**summarize(losses, unions, SHIFTS[shift]), "tokens": union_tokens}
    return {"corpus": SHIFTS[shift], "updates": rows, "union": union, "headline": headline(rows, union, RECOMMENDED[shift])}


def headline(rows: list[dict], union: dict, fraction: float) -> dict:
    """The paper's comparison: the recommended replay's average loss against the union's. A gap no
    larger than the two spreads together is a tie."""
    row = next(r for r in rows if r["replay"] == fraction)
    gap = row["avg"]["mean"] - union["avg"]["mean"]
    noise = row["avg"]["spread"] + union["avg"]["spread"]
    return {"replay": fraction, "gap_avg": gap, "noise": noise, "tie": abs(gap) <= noise, "tokens_vs_union": row["tokens_vs_union"]}


def print_table(shift: str, result: dict) -> None:
    say(f"\n{shift} shift (B = {result['corpus']}): held-out loss, mean ± half range over seeds")
    say(f"{'run':>10} {'A':>15} {'B':>15} {'avg':>15} {'avg − union':>12} {'tokens':>8}")

    def fmt(m: dict) -> str:
        return f"{m['mean']:.3f} ± {m['spread']:.3f}"

    union = result["union"]
    for row in result["updates"]:
        gap = row["avg"]["mean"] - union["avg"]["mean"]
        say(f"{row['replay']:>9.0%} {fmt(row['A']):>15} {fmt(row['B']):>15} {fmt(row['avg']):>15} {gap:>+12.3f} {row['tokens_vs_union']:>8.0%}")
    say(f"{'union':>10} {fmt(union['A']):>15} {fmt(union['B']):>15} {fmt(union['avg']):>15} {'':>12} {'100%':>8}")
    h = result["headline"]
    verdict = "a tie with the union" if h["tie"] else ("worse than the union" if h["gap_avg"] > 0 else "better than the union")
    say(f"{h['replay']:.0%} replay: avg {h['gap_avg']:+.3f} against the union (spreads together {h['noise']:.3f}): "
        f"{verdict}, at {h['tokens_vs_union']:.0%} of its tokens")


def plot(results: dict, base_loss_a: float, path) -> None:
    """Per shift: loss on A, on B and their average against the replay share (bars: half range over
    seeds), each with the union run's value as a horizontal line of the same colour (band: its half
    range), and the base's loss on A (below it, the update forgot nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5))
    colours = {"A": "tab:blue", "B": "tab:orange", "avg": "black"}
    for ax, (shift, result) in zip(axes, results.items()):
        x = range(len(FRACTIONS))
        for key, colour in colours.items():
            label = {"A": "A (old)", "B": f"B = {result['corpus']} (new)", "avg": "average"}[key]
            means = [r[key]["mean"] for r in result["updates"]]
            spreads = [r[key]["spread"] for r in result["updates"]]
            ax.errorbar(x, means, yerr=spreads, color=colour, marker="o", capsize=3, label=label,
                        linewidth=2 if key == "avg" else 1)
            union = result["union"][key]
            ax.axhline(union["mean"], color=colour, linestyle="--", linewidth=1)
            ax.axhspan(union["mean"] - union["spread"], union["mean"] + union["spread"], color=colour, alpha=0.1)
        ax.axhline(base_loss_a, color="tab:gray", linestyle=":", linewidth=1, label=f"{BASE} on A (before the update)")
        ax.set_xticks(list(x), [f"{f:.0%}" for f in FRACTIONS])
        ax.set_xlabel("replay of A (share of every batch)")
        ax.set_ylabel("held-out loss")
        times = result["union"]["tokens"] / result["updates"][0]["tokens"]
        ax.set_title(f"{shift} shift; dashed: union run ({times:.3g}× the update's tokens)", fontsize=10)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.splitlines()[0])
    base(args.store, args.size)
    shift = shift_table(args.store, BASE)
    say(f"{BASE} held-out loss: " + ", ".join(f"{c} {v:.3f}" for c, v in shift["loss"].items())
        + f"; gap weak {shift['gap_weak']:+.3f}, strong {shift['gap_strong']:+.3f}")
    results = {name: study_shift(args.store, args.size, name, args.seeds) for name in SHIFTS}
    for name, result in results.items():
        print_table(name, result)
    path = figure_path(STUDY)
    plot(results, shift["loss"][PROSE_A], path)
    write_results(STUDY, args, {
        "base": BASE, "base_shared": "one base (seed 0) for every seed; the seed is the update's and the union run's",
        "shift": shift, "fractions": FRACTIONS, "shifts": results, "figure": path.name,
    }, started)


if __name__ == "__main__":
    main()
