"""`renewlm mixture show`: what a mixture will read, before any compute is spent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.errors import ConfigError

mixture_app = typer.Typer(help="Inspect mixtures.", no_args_is_help=True)
app.add_typer(mixture_app, name="mixture")


@mixture_app.command("show")
def show(
    mixture: Annotated[Path, typer.Argument(help="Mixture YAML file.")],
    samples: Annotated[int, typer.Option("--samples", help="Sequences the run will read in all.")],
    seq_len: Annotated[int, typer.Option("--seq-len", help="Tokens per sequence.")],
    seed: Annotated[int, typer.Option(help="Data-order seed.")] = 0,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="A schedule event as NAME=FRACTION, for phases that end at one."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Planned samples, tokens, share and epochs per phase and corpus."""
    from renewlm.data.corpus import Corpus
    from renewlm.data.mixture import load_mixture
    from renewlm.data.stream import MixtureStream

    spec = load_mixture(mixture)
    events = {}
    for item in event or []:
        name, _, value = item.partition("=")
        try:
            events[name] = float(value)
        except ValueError:
            raise ConfigError(f"--event {item!r} is not NAME=FRACTION; write e.g. --event switch=0.711") from None
    unplaced = [(i + 1, p.end) for i, p in enumerate(spec.phases) if isinstance(p.end, str) and p.end not in events]
    if unplaced:
        phase, name = unplaced[0]
        raise ConfigError(
            f"phase {phase} of {mixture} ends at schedule event {name!r}, which no --event places; "
            f"pass --event {name}=FRACTION (e.g. --event {name}=0.8), the fraction of the run where the event falls"
        )
    st = open_store(store)
    corpora = {name: Corpus.open(st, name) for name in spec.corpus_names()}
    stream = MixtureStream(spec, corpora, seq_len=seq_len, total_samples=samples, seed=seed, events=events)
    table = Table(title=f"{mixture} — {samples:,} sequences of {seq_len} tokens")
    for column in ("phase", "samples", "corpus", "sequences", "tokens", "share", "epochs so far"):
        table.add_column(column, justify="left" if column in ("corpus",) else "right")
    bounds = stream.phase_bounds
    for row in stream.plan():
        span = f"{bounds[row.phase - 1]:,}–{bounds[row.phase]:,}"
        table.add_row(
            str(row.phase), span, row.corpus, f"{row.samples:,}", f"{row.tokens:,}", f"{row.share:.1%}", f"{row.epochs:.2f}"
        )
    console.print(table)
