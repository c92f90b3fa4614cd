"""`renewlm soup NAME --from V1 --from V2 ...`: versions merged into a new version."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import count, names, numbers, renamed
from renewlm.counts import DEFAULT_EVAL_MICRO_BATCH, DEFAULT_EVAL_TOKENS
from renewlm.errors import ConfigError


def _params(values: list[str] | None) -> dict:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r} is not NAME=VALUE; write e.g. --param density=0.5")
        out[key.strip()] = value.strip()
    return out


def _loss_table(title: str, first: str, rows: list[tuple[str, dict, str]], corpora: list[str]) -> Table:
    table = Table(title=title)
    table.add_column(first)
    for c in [*corpora, "mean"]:
        table.add_column(c, justify="right")
    table.add_column("")
    for label, losses, note in rows:
        table.add_row(label, *(f"{losses[c]:.4f}" for c in [*corpora, "mean"]), note)
    return table


@app.command()
def soup(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    from_: Annotated[list[str], typer.Option("--from", help="Versions to merge (repeat, or comma-separated).")],
    weights: Annotated[list[str] | None, typer.Option("--weights", help="One weight per --from version (repeat, or comma-separated); linear normalises them, and with --base they sum to at most 1 and the base gets the rest.")] = None,
    method: Annotated[str, typer.Option("--method", help="linear (built in), or one of mergekit's: slerp, ties, task_arithmetic, dare_ties, model_stock, ...")] = "linear",
    base: Annotated[str | None, typer.Option("--base", help="The base version: the other end of a sweep, or the reference of slerp, ties and other task-vector methods.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="A parameter of the method, NAME=VALUE (e.g. density=0.5 for ties); repeat for several.")] = None,
    sweep: Annotated[str | None, typer.Option("--sweep", help="Values of α to try for α·V + (1−α)·B, e.g. 0,0.25,0.5,0.75,1; the best is kept.")] = None,
    greedy: Annotated[bool, typer.Option("--greedy", help="Greedy soup: add a version to the average only if the mean held-out loss improves.")] = False,
    data: Annotated[list[str] | None, typer.Option("--data", help="Corpora whose held-out splits measure the soup (repeat, or comma-separated).")] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", help="Held-out sequence length (default: the first version's training seq_len, else 512).")] = None,
    eval_tokens: Annotated[str, typer.Option("--eval-tokens", help="Held-out tokens per corpus, e.g. 64k.")] = str(DEFAULT_EVAL_TOKENS),
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per forward pass when measuring.")] = DEFAULT_EVAL_MICRO_BATCH,
    store: StoreOption = None,
    on: Annotated[list[str] | None, typer.Option("--on", hidden=True, help="Old spelling of --data.")] = None,
) -> None:
    """Average (or merge) versions into a new version; with --sweep or --greedy, keep the best on held-out data."""
    from renewlm.merge import make_soup  # torch loads only for commands that need it

    corpora = names(renamed(data, on, "--on", "--data"))
    sources = names(from_)
    out = make_soup(
        open_store(store), name, sources, weights=numbers(weights, "--weights"), method=method, base=base,
        params=_params(param), sweep=numbers([sweep] if sweep else None, "--sweep"), greedy=greedy, on=corpora,
        seq_len=seq_len, eval_tokens=count(eval_tokens, "--eval-tokens"), micro_batch=micro_batch,
    )
    record = out["record"]
    if out["sweep"]:
        rows = [(f"{r['alpha']:g}", r["losses"], "kept" if r["alpha"] == out["alpha"] else "") for r in out["sweep"]]
        console.print(_loss_table(f"held-out loss of α·{sources[0]} + (1−α)·{base}", "α", rows, corpora))
    if out["greedy"]:
        rows = [(f"{r['version']} (alone {r['alone']['mean']:.4f})", r["soup"], "added" if r["added"] else "left out") for r in out["greedy"]]
        console.print(_loss_table("greedy soup: held-out loss of the average with each version", "version", rows, corpora))
    parents = ", ".join(f"{p.name} {p.weight:.4g}" if p.weight is not None else f"{p.name} ({p.role or 'input'})" for p in record.parents)
    console.print(f"version {name} ({record.method}: {parents}): {out['path']}", highlight=False)
    if record.losses and not (out["sweep"] or out["greedy"]):
        console.print("held-out " + ", ".join(f"{c} {v:.4f}" for c, v in record.losses.items()), highlight=False)
