"""`renewlm demo`: the README's main command."""

from __future__ import annotations

import time

from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store


@app.command()
def demo(store: StoreOption = None) -> None:
    """Pre-train a tiny model on prose, then update it on code with and without replay (CPU, minutes)."""
    from renewlm.demo import NAMES, VERSIONS, run_demo  # torch loads only for commands that train

    st = open_store(store)
    started = time.monotonic()
    results = run_demo(st, say=console.print)
    prose, code = NAMES["prose"], NAMES["code"]
    base = results[VERSIONS[0]]["losses"]
    table = Table(title="held-out loss (lower is better)")
    for column in ("version", "how", "prose", "code", "prose forgetting"):
        table.add_column(column, justify="left" if column in ("version", "how") else "right")
    how = {
        VERSIONS[0]: "pre-trained on prose",
        VERSIONS[1]: "update on code: re-warm + re-decay, no replay",
        VERSIONS[2]: "update on code: same, with 25% prose replay",
    }
    for name in VERSIONS:
        losses = results[name]["losses"]
        forgetting = "" if name == VERSIONS[0] else f"{losses[prose] - base[prose]:+.3f}"
        table.add_row(name, how[name], f"{losses[prose]:.3f}", f"{losses[code]:.3f}", forgetting)
    console.print(table)
    console.print(f"store: {st.root}")
    console.print(f"versions: {st.root / 'versions'} ({', '.join(VERSIONS)}); see `renewlm versions`")
    console.print(f"metrics: {st.root / 'runs'}/<version>/metrics.jsonl")
    console.print(f"done in {time.monotonic() - started:.0f} s")
