"""`renewlm demo`: the README's main command."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store


@app.command()
def demo(
    threads: Annotated[int | None, typer.Option(
        "--threads", help="CPU threads for training and tokenizing (default: OMP_NUM_THREADS, else the cores not busy now).",
        show_default=False,
    )] = None,
    store: StoreOption = None,
) -> None:
    """Pre-train a tiny model on prose, then update it on code with and without replay (CPU, minutes)."""
    from renewlm.examples.demo import NAMES, VERSIONS, run_demo  # torch loads only for commands that train

    st = open_store(store)
    started = time.monotonic()
    losses = run_demo(st, say=console.print, threads=threads)
    prose, code = NAMES["prose"], NAMES["code"]
    base = losses[VERSIONS[0]]
    table = Table(title="held-out loss (lower is better)")
    for column in ("version", "trained on", "prose", "code", "forgot (prose)"):
        table.add_column(column, justify="left" if column in ("version", "trained on") else "right")
    how = {
        VERSIONS[0]: "prose, from scratch",
        VERSIONS[1]: "code: re-warm, re-decay",
        VERSIONS[2]: "code: same + 25% replay",
    }
    for name in VERSIONS:
        own = losses[name]
        forgetting = "" if name == VERSIONS[0] else f"{own[prose] - base[prose]:+.3f}"
        table.add_row(name, how[name], f"{own[prose]:.3f}", f"{own[code]:.3f}", forgetting)
    console.print(table)
    console.print(f"store: {st.root}")
    console.print(f"versions: {st.root / 'versions'} ({', '.join(VERSIONS)}); see `renewlm versions`")
    console.print(f"metrics: {st.root / 'runs'}/<version>/metrics.jsonl")
    console.print(f"done in {time.monotonic() - started:.0f} s")
