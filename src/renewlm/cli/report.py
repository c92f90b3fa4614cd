"""`renewlm report`: one self-contained HTML file of the store (or of some versions)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import names


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
    versions: Annotated[list[str] | None, typer.Option("--versions", help="Only these versions and their runs (repeat, or comma-separated; default: all).")] = None,
    store: StoreOption = None,
) -> None:
    """Write one self-contained HTML report (images inline, opens offline) from the store's records and metrics:
    the version graph, training and forgetting curves, held-out losses, lm-eval results, sweeps and the ledger."""
    from renewlm.report import write_report

    started = time.perf_counter()
    path = write_report(open_store(store), out, names(versions) or None)
    size = path.stat().st_size
    console.print(f"report: {path} ({size / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s); open it in a browser", highlight=False)
