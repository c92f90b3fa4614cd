"""Draw docs/figures/paradigms.png: the learning rate of the three update paradigms over three
releases of 1,000 steps each, computed by renewlm's own schedules (the ones `renewlm update` uses).

    python docs/figures/paradigms.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from renewlm.optim.schedule import validate_schedule  # noqa: E402

PEAK, RELEASE, DECAY = 3e-4, 1000, 0.1


def curve(spec: dict, steps: int, start: int = 0):
    schedule = validate_schedule(spec).build(steps)
    xs = list(range(steps))
    return [start + x for x in xs], [schedule.lr(x) for x in xs]


def main(out: Path = Path(__file__).with_name("paradigms.png")) -> None:
    fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), dpi=110, sharex=True, layout="constrained")
    colors = ["tab:blue", "tab:orange", "tab:green"]
    cont, switch, retrain = axes

    for r in range(3):  # continue: re-warm and re-decay on each release's data (Ibrahim et al.)
        cont.plot(*curve({"name": "cosine", "peak_lr": PEAK}, RELEASE, r * RELEASE), color=colors[r], label=f"release {r + 1}")
    cont.set_title("continue: each release re-warms and re-decays from the last release", loc="left", fontsize=10)

    for r in range(3):  # switch: the trunk holds the peak, each release branches off it with a fast decay
        spec = {"name": "wsd", "peak_lr": PEAK, "decay_fraction": 0.0} if r == 0 else {"name": "constant", "lr": PEAK}
        switch.plot(*curve(spec, RELEASE, r * RELEASE), color="grey", linewidth=2, label="trunk (main path)" if r == 0 else None)
        end = (r + 1) * RELEASE
        xs, ys = curve({"name": "branch", "start_lr": PEAK, "decay_fraction": 1.0}, int(DECAY * RELEASE), end)
        switch.plot(xs, ys, color=colors[r], label=f"release {r + 1} (branch, {DECAY:.0%} of the update)")
    switch.set_title("switch: one trunk at its peak LR; each release branches off it (Wang et al. 2024)", loc="left", fontsize=10)

    for r in range(3):  # retrain: from scratch on all data so far, each release longer than the last
        retrain.plot(*curve({"name": "cosine", "peak_lr": PEAK}, (r + 1) * RELEASE), color=colors[r], label=f"release {r + 1}")
    retrain.set_title("retrain: each release from scratch on everything so far (the baseline)", loc="left", fontsize=10)

    for ax in axes:
        ax.set_ylabel("learning rate")
        ax.set_ylim(0, PEAK * 1.1)
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    retrain.set_xlabel("steps of new data (1,000 per release)")
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
