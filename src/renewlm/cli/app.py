"""The typer application and the options every command shares. Commands live in sibling modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from renewlm.store import STORE_ENV, Store

app = typer.Typer(
    name="renewlm",
    help="Update language models with new data by continual pre-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Store folder (default ./renewlm-store).",
        show_default=False,
    ),
]


def open_store(store: Path | None) -> Store:
    return Store(store)
