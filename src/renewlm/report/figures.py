"""The report's matplotlib figures, each returned as a `data:image/png;base64,...` URI so the HTML file
carries its images inline and opens from disk with no network.

Agg only (no display needed), figures closed as soon as they are encoded, and a modest DPI: a store of
50 runs draws its 50 run figures in a few seconds (docs/report.md has the measurement).
"""

from __future__ import annotations

import base64
import io
import math

from renewlm.report.collect import RunCurves

DPI = 96
RECOVERY = 0.25  # share of a rise a held-out curve must win back to count as a stability gap
BEST = {"marker": "*", "markersize": 14, "color": "#d69e2e", "markeredgecolor": "#744210", "zorder": 5, "linestyle": "none"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def encode(fig) -> str:
    """The figure as a PNG data URI; the figure is closed."""
    plt = _plt()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_file(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def stability_gap(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(tokens at the peak, rise over the start) when a held-out curve first rises above its starting
    value and then recovers at least `RECOVERY` of the rise: the stability gap of Guo et al. 2024
    (arXiv:2406.14833). A rise that stays is forgetting, not a gap, and is left unmarked."""
    if len(points) < 3:
        return None
    start = points[0][1]
    peak_index = max(range(1, len(points)), key=lambda i: points[i][1])
    peak_tokens, peak = points[peak_index]
    rise = peak - start
    if rise > 0 and peak - min(y for _, y in points[peak_index:]) >= RECOVERY * rise:
        return peak_tokens, rise
    return None


def run_figure(run: RunCurves) -> str:
    """Left: training loss and learning rate against tokens. Right: held-out loss on every corpus. Both
    share one token axis from 0 (the first evaluation is at 0, the first step's loss after it)."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 3.3), sharex=True)
    if run.steps:
        tokens = [r["tokens"] for r in run.steps]
        # A line through one point draws nothing: a short run's points are marked.
        marks = {"marker": "o", "markersize": 3} if len(tokens) <= 10 else {}
        left.plot(tokens, [r["loss"] for r in run.steps], color="#2b6cb0", linewidth=1.2, label="training loss", **marks)
        left.set_ylabel("training loss", color="#2b6cb0")
        lrs = [(r["tokens"], r["lr"]) for r in run.steps if isinstance(r.get("lr"), (int, float))]
        if lrs:
            lr_axis = left.twinx()
            lr_axis.plot([t for t, _ in lrs], [v for _, v in lrs], color="#dd6b20", linewidth=1.2, **marks)
            lr_axis.set_ylabel("learning rate", color="#dd6b20")
            lr_axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            lr_axis.set_ylim(bottom=0)
    else:
        left.text(0.5, 0.5, "no training step logged", ha="center", va="center", transform=left.transAxes)
    left.set_xlabel("tokens")
    left.set_title("loss and learning rate", fontsize=10)
    left.grid(alpha=0.3)
    corpora = list(dict.fromkeys(c for r in run.evals for c in r["eval"]))
    marked = False
    for i, corpus in enumerate(corpora):
        points = [(r["tokens"], r["eval"][corpus]) for r in run.evals if isinstance(r["eval"].get(corpus), (int, float))]
        (line,) = right.plot([t for t, _ in points], [v for _, v in points], marker="o", markersize=3, linewidth=1.3,
                             label=corpus, color=f"C{i % 10}")
        gap = stability_gap(points)
        if gap:
            marked = True
            right.annotate(f"stability gap +{gap[1]:.3f}", (gap[0], points[0][1] + gap[1]), textcoords="offset points",
                           xytext=(5, 4), va="bottom", fontsize=8, color=line.get_color())
    if marked:  # headroom, so the label stays inside the axes, clear of the title
        low, high = right.get_ylim()
        right.set_ylim(low, high + 0.12 * (high - low))
    if corpora:
        right.legend(fontsize=8, loc="best")
    else:
        right.text(0.5, 0.5, "no held-out evaluation logged", ha="center", va="center", transform=right.transAxes)
    right.set_xlabel("tokens")
    right.set_ylabel("held-out loss")
    right.set_title("held-out loss on every corpus (forgetting curves)", fontsize=10)
    right.grid(alpha=0.3)
    left.set_xlim(left=0)  # shared with the right panel
    # Fixed margins rather than tight_layout, which draws the figure once more only to measure it:
    # a third of the time of the report's most numerous figure.
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.15, top=0.9, wspace=0.28)
    return encode(fig)


def heatmap(order: list[str], losses: dict[str, dict[str, float]], from_record: dict[str, set[str]], corpora: list[str]) -> str:
    """Versions × corpora of final held-out loss, coloured within each corpus (green: its lowest)."""
    import numpy as np

    plt = _plt()
    rows = [v for v in order if v in losses]
    values = np.array([[losses[v].get(c, np.nan) for c in corpora] for v in rows], dtype=float)
    shade = np.full_like(values, np.nan)
    for j in range(len(corpora)):  # each corpus on its own scale: losses of different data do not compare
        column = values[:, j]
        if np.isfinite(column).any():
            low, high = np.nanmin(column), np.nanmax(column)
            shade[:, j] = (column - low) / (high - low) if high > low else 0.5
    fig, ax = plt.subplots(figsize=(2.4 + 1.25 * len(corpora), 1.1 + 0.3 * len(rows)))
    cmap = plt.get_cmap("RdYlGn_r").with_extremes(bad="#e2e8f0")
    # A wider colour range than the data's keeps the ends of the map pale enough to read the numbers on.
    ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, vmin=-0.45, vmax=1.45, aspect="auto")
    for i, v in enumerate(rows):
        for j, c in enumerate(corpora):
            if math.isfinite(values[i, j]):
                mark = "°" if c in from_record.get(v, set()) else ""
                ax.text(j, i, f"{values[i, j]:.3f}{mark}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(corpora)), corpora, fontsize=9)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    fig.tight_layout()
    return encode(fig)


def core_average_bars(averages: dict[str, float]) -> str:
    plt = _plt()
    names = list(averages)
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.3 * len(names)))
    ax.barh(range(len(names)), [averages[n] for n in names], color="#2b6cb0")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_xlabel("core average (0 = chance, 1 = perfect)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return encode(fig)


def series_figure(names: list[str], spent: list[float], retrain: list[float]) -> str:
    """FLOPs spent on a series of releases so far against retraining each of them from scratch."""
    plt = _plt()
    xs = list(range(1, len(names) + 1))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(xs, retrain, marker="o", label="retraining each from scratch", color="C0")
    (line,) = ax.plot(xs, spent, marker="o", label="spent (each run once)", color="C2")
    for x, s, r in zip(xs, spent, retrain):
        if r:
            ax.annotate(f"{s / r:.0%}", (x, s), textcoords="offset points", xytext=(0, -12), ha="center", fontsize=8,
                        color=line.get_color())
    ax.set_xticks(xs, names, rotation=30 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center", fontsize=8)
    ax.margins(y=0.15)  # room for the ratio under the first point
    ax.set_ylabel("cumulative training FLOPs")
    ax.set_title("the longest series in the store (% = spent of retraining)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return encode(fig)


def sweep_figure(corpus: str, lrs: list[tuple[float, float]], best_lr, durations: list[tuple[float, float]], best_tokens,
                 repeats: list[float] = ()) -> str:
    """Held-out loss against the learning rate, and against the tokens at the best LR; best points starred,
    the best LR's repeats with other data-order seeds drawn beside it (the noise a verdict must beat)."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.1))
    for ax, points, best, label in ((left, lrs, best_lr, "learning rate"), (right, durations, best_tokens, "tokens")):
        if points:
            points = sorted(points)
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", color="#2b6cb0")
            ax.plot([x for x, y in points if x == best], [y for x, y in points if x == best], **BEST, label="best")
            if points[-1][0] > 4 * points[0][0] > 0:
                ax.set_xscale("log")
        else:
            ax.text(0.5, 0.5, "no finished point", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(label)
        ax.set_ylabel(f"held-out loss on {corpus}")
        ax.grid(alpha=0.3)
    if repeats and best_lr is not None:
        left.plot([best_lr] * len(repeats), repeats, marker="_", markersize=14, color="#718096", linestyle="none",
                  label="other seeds")
    if lrs:
        left.legend(fontsize=8)
    left.set_title(f"{corpus}: learning-rate sweep", fontsize=10)
    right.set_title(f"{corpus}: duration sweep at the best LR", fontsize=10)
    fig.tight_layout()
    return encode(fig)
