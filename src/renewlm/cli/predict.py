"""`renewlm plan --from V --data C ... --predict`, and what `update --predict` / `--replay auto` print before
training: an update's held-out losses, predicted before it runs."""

from __future__ import annotations

import json

from rich.table import Table

from renewlm.cli.app import console, open_store
from renewlm.cli.options import names
from renewlm.counts import parse_tokens
from renewlm.updates.plan import format_count

NOTE = ("now: the parent's held-out loss (the probe's step 0); predicted by the loss law fitted to the parent's logged "
        "curve and the probe (docs/prediction.md)")


def losses_table(title: str, rows: list[tuple[str, dict[str, float], dict[str, float]]], new: set[str]) -> Table:
    """Per candidate (label, the parent's losses, the predicted ones) and corpus: now, predicted, the change."""
    table = Table(title=title)
    for column in ("candidate", "corpus", "", "now", "predicted", "change"):
        table.add_column(column, justify="left" if column in ("candidate", "corpus", "") else "right", no_wrap=True)
    for label, start, final in rows:
        for i, corpus in enumerate(sorted(final, key=lambda c: (c not in new, c))):
            change = final[corpus] - start[corpus]
            kind = "new" if corpus in new else "forgetting" if change > 0 else "old"
            table.add_row(label if i == 0 else "", corpus, kind, f"{start[corpus]:.4f}", f"{final[corpus]:.4f}", f"{change:+.4f}",
                          end_section=i == len(final) - 1)
    return table


def print_update_prediction(request, prediction: dict) -> None:
    """`update --predict` / `--replay auto`, before the update trains: what was predicted and the share chosen."""
    new = {item.split(":")[0] for item in request.data}
    start = prediction["start"]
    if "candidates" in prediction:
        rows = [(label + (" (chosen)" if label == f"replay {prediction['replay']:g}" else ""), start, c["heldout"])
                for label, c in prediction["candidates"].items()]
    else:
        rows = [(f"replay {prediction['replay']:g}", start, prediction["heldout"])]
    console.print(losses_table(f"predicted held-out loss of {request.name} from {request.parent}", rows, new))
    console.print(NOTE)
    if "forget_budget" in prediction:
        console.print(f"--replay auto: replay {prediction['replay']:g}, the smallest share whose predicted forgetting on every old "
                      f"corpus is within {prediction['forget_budget']:g}", highlight=False)


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


def predict_update(store_path, *, parent: str, data: list[str], replays: list[float], steps: int | None, tokens: str | None,
                   recipe: str | None, lr: float | None, seed: int, as_json: bool) -> None:
    """One candidate per replay share: its probe's cost said, the probe run (or reused), the prediction printed."""
    from renewlm.train.loop import train  # torch loads only for commands that train
    from renewlm.updates.predict import candidates, predict
    from renewlm.updates.request import UpdateRequest

    store = open_store(store_path)
    request = UpdateRequest(name=f"{parent}.candidate", parent=parent, data=names(data), recipe=recipe, lr=lr, steps=steps,
                            tokens=None if tokens is None else round(parse_tokens(tokens, "--tokens")), seed=seed)
    made = candidates(store, request, replays or [0.0])
    predictions = predict(store, made, lambda cfg: train(cfg, store), None if as_json else say_probe_cost(store))
    if as_json:
        print(json.dumps([{"candidate": p.candidate, "steps": p.steps, "probe": p.probe, "parent": p.start, "predicted": p.final,
                           "change": p.change(), "laws": p.laws} for p in predictions], indent=2))
        return
    first = next(iter(made.values()))
    title = f"predicted held-out loss after {first.total_steps:,} steps from {parent} ({first.schedule.name}, peak {first.schedule.peak:g})"
    console.print(losses_table(title, [(p.candidate, p.start, p.final) for p in predictions], {item.split(":")[0] for item in names(data)}))
    console.print(NOTE)
