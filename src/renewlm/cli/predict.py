"""`renewlm plan --from V --data C ... --predict`, and what `update --predict` / `--replay auto` print before
training: an update's held-out losses, predicted before it runs."""

from __future__ import annotations

import json

from rich.table import Table

from renewlm.cli.app import console, open_store
from renewlm.cli.options import names
from renewlm.counts import parse_tokens
from renewlm.store import write_png
from renewlm.updates.plan import format_count

NOTE = ("now: the parent's held-out loss (the probe's step 0); predicted by the loss law fitted to the parent's logged "
        "curve and the probe. Not yet accurate: on twelve full updates no choice of the law had seen, its mean error was "
        "0.08-0.23 nats per corpus (worst 0.53), and the probe's own last loss ranked them better (docs/prediction.md)")
PROBE_NOTE = ("probe's end: the probe's last measured loss, at the probe's end, not the update's; on updates no choice of the "
              "law had seen it ranked the candidates better than the law")


def losses_table(title: str, rows: list[tuple], new: set[str]) -> Table:
    """Per candidate (label, the parent's losses, the predicted ones, and, where given, the probe's last measured
    ones) and corpus: now, predicted, the change, the probe's end."""
    probed = any(len(row) > 3 for row in rows)
    table = Table(title=title)
    for column in ("candidate", "corpus", "", "now", "predicted", "change", *(["probe's end"] if probed else [])):
        table.add_column(column, justify="left" if column in ("candidate", "corpus", "") else "right", no_wrap=True)
    for label, start, final, *probe in rows:
        for i, corpus in enumerate(sorted(final, key=lambda c: (c not in new, c))):
            change = final[corpus] - start[corpus]
            kind = "new" if corpus in new else "forgetting" if change > 0 else "old"
            table.add_row(label if i == 0 else "", corpus, kind, f"{start[corpus]:.4f}", f"{final[corpus]:.4f}", f"{change:+.4f}",
                          *([f"{probe[0][corpus]:.4f}"] if probe else []), end_section=i == len(final) - 1)
    return table


def probe_end(prediction) -> dict[str, float]:
    """The probe's last measured held-out loss per corpus: over full updates it ranked candidates better than the law."""
    return {c: points[-1][1] for c, points in prediction.probed.items()}


def print_update_prediction(cfg) -> None:
    """`update --predict` / `--replay auto`, before the update trains: what was predicted and the share chosen."""
    p, chosen = cfg.prediction, f"replay {cfg.prediction.replay:g}"
    if p.candidates:
        rows = [(label + (" (chosen)" if label == chosen else ""), p.start, c.heldout) for label, c in p.candidates.items()]
    else:
        rows = [(chosen, p.start, p.heldout)]
    new = set(cfg.mixture.phases[0].corpora)
    console.print(losses_table(f"predicted held-out loss of {cfg.name} after {cfg.total_steps:,} steps from {cfg.parent}", rows, new))
    console.print(NOTE)
    if p.forget_budget is not None:
        console.print(f"--replay auto: {chosen}, the smallest share whose predicted forgetting on every old corpus is within "
                      f"{p.forget_budget:g}", highlight=False)


def say_probe_cost(store):
    """`announce` for predict(): what the probes cost against one update, and how many the store already has."""
    from renewlm.updates.predict import PROBE_SHARE

    def announce(candidates: dict, probes: dict) -> None:
        first, each = next(iter(candidates.values())), next(iter(probes.values())).total_steps
        todo = sum(not store.exists("versions", p.name) for p in probes.values())
        console.print(f"probes: {len(probes)} of {each} steps ({format_count(each * first.batch_tokens)} tokens each; all of them "
                      f"{len(probes) * each / first.total_steps:.1%} of one update's {format_count(first.total_steps * first.batch_tokens)}, "
                      f"at most {PROBE_SHARE:.0%}); {todo} to train, {len(probes) - todo} reused from the store")

    return announce


def write_curves(predictions, new: set[str], title: str, path) -> str:
    """The predicted loss after every step of each candidate, one panel per corpus, the probes' points on them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = sorted({c for p in predictions for c in p.curves}, key=lambda c: (c not in new, c))
    fig, axes = plt.subplots(1, len(corpora), figsize=(4.5 * len(corpora), 4), dpi=120, layout="constrained", squeeze=False)
    for ax, corpus in zip(axes[0], corpora):
        for p in predictions:
            if corpus in p.curves:
                (line,) = ax.plot(range(1, len(p.curves[corpus]) + 1), p.curves[corpus], label=p.candidate)
                ax.plot(*zip(*p.probed[corpus]), "o", color=line.get_color(), markersize=3)
        ax.set_title(f"{corpus} ({'new' if corpus in new else 'old'})")
        ax.set_xlabel("update step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out loss")
    fig.suptitle(title)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside lower center", ncols=min(4, len(predictions)), frameon=False)
    return str(write_png(fig, path))


def predict_update(store_path, *, parent: str, data: list[str], replays: list[float], steps: int | None, tokens: str | None,
                   recipe: str | None, lr: float | None, seed: int, as_json: bool, curve=None) -> None:
    """One candidate per replay share: its probe's cost said, the probe run (or reused), the prediction printed."""
    from renewlm.train.loop import train  # torch loads only for commands that train
    from renewlm.updates.predict import candidates, predict
    from renewlm.updates.request import UpdateRequest

    store = open_store(store_path)
    request = UpdateRequest(name=f"{parent}.candidate", parent=parent, data=names(data), recipe=recipe, lr=lr, steps=steps,
                            tokens=None if tokens is None else round(parse_tokens(tokens, "--tokens")), seed=seed)
    made = candidates(store, request, replays or [0.0])
    predictions = predict(store, made, lambda cfg: train(cfg, store), None if as_json else say_probe_cost(store))
    first, new = next(iter(made.values())), {item.split(":")[0] for item in names(data)}
    title = f"predicted held-out loss after {first.total_steps:,} steps from {parent} ({first.schedule.name}, peak {first.schedule.peak:g})"
    drawn = write_curves(predictions, new, title, curve) if curve is not None else None
    if as_json:
        print(json.dumps([{"candidate": p.candidate, "steps": p.steps, "probe": p.probe, "parent": p.start, "predicted": p.final,
                           "change": p.change(), "probe_end": probe_end(p), "laws": p.laws} for p in predictions], indent=2))
        return
    console.print(losses_table(title, [(p.candidate, p.start, p.final, probe_end(p)) for p in predictions], new))
    console.print(NOTE)
    console.print(PROBE_NOTE)
    if drawn:
        console.print(f"wrote {drawn} (lines: predicted; points: the probes' measured losses)", highlight=False)
