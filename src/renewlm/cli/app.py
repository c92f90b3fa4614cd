"""The typer application and the options every command shares. Commands live in sibling modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from renewlm import __version__
from renewlm.console import Console
from renewlm.store import STORE_ENV, Store

class Interrupted(Exception):
    """A Ctrl-C or SIGTERM, carrying what the interrupted command said about it (empty when nothing)."""


class _Group(TyperGroup):
    # typer turns a KeyboardInterrupt into exit code 130 and drops its message, such as the step a run
    # stopped at; `main` prints that message instead of the generic one.
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise Interrupted(str(e)) from None


app = typer.Typer(
    name="renewlm",
    cls=_Group,
    help="Update language models with new data by continual pre-training.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click hands these to every subcommand's context, so `-h` works on each command and group
    context_settings={"help_option_names": ["-h", "--help"]},
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


def _print_version(value: bool) -> None:
    if value:
        print(f"renewlm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Print renewlm's version and exit.", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    """Update language models with new data by continual pre-training."""


def open_store(store: Path | None) -> Store:
    return Store(store)
