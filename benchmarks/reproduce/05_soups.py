"""Study 5: soups of an update with its base (Databricks Mosaic 2024, continued pre-training in practice).

Each update of study 1 without replay (weak and strong shift, every seed) is averaged with its parent
`rp-a`: α·update + (1 − α)·rp-a for α in ALPHAS, by `renewlm soup NAME --from UPDATE --base rp-a
--sweep 0,0.25,0.5,0.75,1 --data A,B`. The sweep measures every α on the held-out splits of A (forgetting)
and B (adaptation) and writes the α with the lowest mean as the soup version; its record keeps every
row, so a second run reads the record instead of rebuilding. α = 0 is the base, α = 1 the update: the
two ends every soup is measured against. For reference the plot also shows study 1's replay updates.

Paper: averaging the CPT model with its base reduces forgetting and can help the target too.

    python benchmarks/reproduce/05_soups.py [--size tiny] [--seeds 0 1] [--store DIR]
"""

from __future__ import annotations

import importlib
import json
import time

from common import (
    BASE,
    PROSE_A,
    RESULTS,
    arguments,
    base,
    figure_path, save_figure,
    mean_spread,
    say,
    write_results,
)

from renewlm.merge import make_soup
from renewlm.store import Store
from renewlm.versions import read_version

replay = importlib.import_module("01_replay")  # study 1 owns the updates (names, run settings)

STUDY = "s05_soups"
ALPHAS = [0.0, 0.25, 0.5, 0.75, 1.0]


def soup_name(shift: str, seed: int) -> str:
    return f"s5-{shift}-s{seed}"


def ensure_sweep(store: Store, size, shift: str, seed: int) -> list[dict]:
    """The α rows (loss on A, on B, their mean) of one update's soup sweep: read from the soup's record
    if it exists, otherwise swept (and its update trained first if study 1 has not)."""
    name = soup_name(shift, seed)
    if not store.exists("versions", name):
        update = replay.ensure_update(store, size, shift, 0.0, seed)
        started = time.perf_counter()
        make_soup(store, name, [update], base=BASE, sweep=ALPHAS, on=[PROSE_A, replay.SHIFTS[shift]])
        say(f"  {name}: {len(ALPHAS)} soups of {update} and {BASE} measured in {time.perf_counter() - started:.0f} s")
    record = read_version(store, name)
    return record.sweep["rows"]


def share(value: float, start: float, end: float) -> float:
    """Where `value` lies from `start` (0) to `end` (1): the share of the update's change a soup keeps."""
    return (value - start) / (end - start)


def study_shift(store: Store, size, shift: str, seeds: list[int]) -> dict:
    """Loss on A and B per α over the seeds; forgetting (loss on A above the base's) and adaptation
    (loss on B below the base's); and the share of the update's own forgetting and adaptation each α keeps."""
    new = replay.SHIFTS[shift]
    sweeps = {seed: {r["alpha"]: r["losses"] for r in ensure_sweep(store, size, shift, seed)} for seed in seeds}
    rows = []
    for alpha in ALPHAS:
        losses, ends = [sweeps[s][alpha] for s in seeds], [(sweeps[s][0.0], sweeps[s][1.0]) for s in seeds]
        a, b = [x[PROSE_A] for x in losses], [x[new] for x in losses]
        rows.append({
            "alpha": alpha, "A": mean_spread(a), "B": mean_spread(b), "avg": mean_spread([(x + y) / 2 for x, y in zip(a, b)]),
            "forgetting": mean_spread([x - e[0][PROSE_A] for x, e in zip(a, ends)]),
            "adaptation": mean_spread([e[0][new] - y for y, e in zip(b, ends)]),
            "share_of_forgetting": mean_spread([share(x, e[0][PROSE_A], e[1][PROSE_A]) for x, e in zip(a, ends)]),
            "share_of_adaptation": mean_spread([share(y, e[0][new], e[1][new]) for y, e in zip(b, ends)]),
        })
    kept = {s: read_version(store, soup_name(shift, s)).sweep["alpha"] for s in seeds}
    return {"corpus": new, "soups": {s: soup_name(shift, s) for s in seeds}, "kept_alpha": kept, "rows": rows}


def replay_points(shift: str) -> list[dict] | None:
    """Study 1's replay updates on this shift (loss on A and B), where its results are written."""
    path = RESULTS / f"{replay.STUDY}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["shifts"][shift]["updates"]


def print_table(shift: str, result: dict) -> None:
    say(f"\n{shift} shift (B = {result['corpus']}): α·update + (1 − α)·{BASE}, mean ± half range over seeds")
    say(f"{'α':>5} {'A':>15} {'B':>15} {'avg':>15} {'forgetting':>11} {'adaptation':>11}")

    def fmt(m: dict) -> str:
        return f"{m['mean']:.3f} ± {m['spread']:.3f}"

    for r in result["rows"]:
        say(f"{r['alpha']:>5.2f} {fmt(r['A']):>15} {fmt(r['B']):>15} {fmt(r['avg']):>15} "
            f"{r['share_of_forgetting']['mean']:>11.0%} {r['share_of_adaptation']['mean']:>11.0%}")
    say("(forgetting, adaptation: share of the update's own, α = 1, that the soup keeps)")
    say("kept α (lowest mean of A and B): " + ", ".join(f"seed {s}: {a:g}" for s, a in result["kept_alpha"].items()))


def plot(results: dict, path) -> None:
    """Per shift: loss on B against loss on A along α (the forgetting/adaptation Pareto curve), bars
    the half range over seeds; study 1's replay updates beside it for comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.8))
    for ax, (shift, result) in zip(axes, results.items()):
        rows = result["rows"]
        ax.errorbar([r["A"]["mean"] for r in rows], [r["B"]["mean"] for r in rows],
                    xerr=[r["A"]["spread"] for r in rows], yerr=[r["B"]["spread"] for r in rows],
                    color="tab:green", marker="o", capsize=3, label="soup α·update + (1−α)·base")
        for r in rows:
            ax.annotate(f"α={r['alpha']:g}", (r["A"]["mean"], r["B"]["mean"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
        points = replay_points(shift)
        if points:
            ax.errorbar([p["A"]["mean"] for p in points], [p["B"]["mean"] for p in points],
                        xerr=[p["A"]["spread"] for p in points], yerr=[p["B"]["spread"] for p in points],
                        color="tab:gray", marker="s", linestyle=":", capsize=3, label="study 1: update with replay")
            for p in points:
                ax.annotate(f"{p['replay']:.0%}", (p["A"]["mean"], p["B"]["mean"]), textcoords="offset points", xytext=(-8, -12), fontsize=7, color="tab:gray")
        ax.set_xlabel("held-out loss on A (old data): forgetting →")
        ax.set_ylabel(f"held-out loss on B = {result['corpus']} (new data)")
        ax.set_title(f"{shift} shift: lower left is better")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.splitlines()[0])
    base(args.store, args.size)
    results = {shift: study_shift(args.store, args.size, shift, args.seeds) for shift in replay.SHIFTS}
    for shift, result in results.items():
        print_table(shift, result)
    path = figure_path(STUDY)
    plot(results, path)
    write_results(STUDY, args, {
        "base": BASE, "updates": "study 1's updates with 0% replay (s1-SHIFT-r00-sSEED)", "alphas": ALPHAS,
        "shifts": results, "figure": path.name,
    }, started)


if __name__ == "__main__":
    main()
