"""`renewlm plan --from V --data C ... --predict`: an update's held-out losses, predicted before it runs."""

from __future__ import annotations

import json

from rich.table import Table

from renewlm.cli.app import console, open_store
from renewlm.cli.options import names
from renewlm.counts import parse_tokens
from renewlm.updates.plan import format_count


def predict_update(store_path, *, parent: str, data: list[str], replays: list[float], steps: int | None, tokens: str | None,
                   recipe: str | None, lr: float | None, seed: int, as_json: bool) -> None:
    """One candidate per replay share: its probe's cost said, the probe run (or reused), the prediction printed."""
    from renewlm.train.loop import train  # torch loads only for commands that train
    from renewlm.updates.predict import PROBE_SHARE, predict, probe_config, probe_steps
    from renewlm.updates.request import UpdateRequest
    from renewlm.updates.update import update_config

    store = open_store(store_path)
    candidates = {}
    for share in dict.fromkeys(replays or [0.0]):
        request = UpdateRequest(name=f"{parent}.candidate", parent=parent, data=names(data), replay=share, recipe=recipe, lr=lr,
                                steps=steps, tokens=None if tokens is None else round(parse_tokens(tokens, "--tokens")), seed=seed)
        candidates[f"replay {share:g}"] = update_config(store, request)
    first = next(iter(candidates.values()))
    each = probe_steps(first, len(candidates))
    probes = [probe_config(cfg, each) for cfg in candidates.values()]
    todo = [p for p in probes if not store.exists("versions", p.name)]
    update_tokens = first.total_steps * first.batch_tokens
    if not as_json:
        console.print(f"probes: {len(probes)} of {each} steps ({format_count(each * first.batch_tokens)} tokens each; all of them "
                      f"{len(probes) * each / first.total_steps:.1%} of one update's {format_count(update_tokens)}, at most "
                      f"{PROBE_SHARE:.0%}); {len(todo)} to train, {len(probes) - len(todo)} reused from the store")
    predictions = predict(store, candidates, lambda cfg: train(cfg, store))
    if as_json:
        print(json.dumps([{"candidate": p.candidate, "steps": p.steps, "probe": p.probe, "parent": p.start, "predicted": p.final,
                           "change": p.change(), "laws": p.laws} for p in predictions], indent=2))
        return
    new = {item.split(":")[0] for item in names(data)}
    table = Table(title=f"predicted held-out loss after {first.total_steps:,} steps from {parent} ({first.schedule.name}, peak {first.schedule.peak:g})")
    for column in ("candidate", "corpus", "", "now", "predicted", "change"):
        table.add_column(column, justify="left" if column in ("candidate", "corpus", "") else "right", no_wrap=True)
    for p in predictions:
        for i, corpus in enumerate(sorted(p.final, key=lambda c: (c not in new, c))):
            kind = "new" if corpus in new else "forgetting" if p.change()[corpus] > 0 else "old"
            table.add_row(p.candidate if i == 0 else "", corpus, kind, f"{p.start[corpus]:.4f}", f"{p.final[corpus]:.4f}",
                          f"{p.change()[corpus]:+.4f}", end_section=i == len(p.final) - 1)
    console.print(table)
    console.print("now: the parent's held-out loss (the probe's step 0); predicted by the loss law fitted to the parent's "
                  "logged curve and the probe (docs/prediction.md)")
