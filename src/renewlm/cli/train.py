"""`renewlm train RUN.yaml` and `renewlm update NEW --from V --data C`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import names
from renewlm.cli.predict import print_update_prediction, say_probe_cost
from renewlm.updates.request import Recipe, ReleaseKind, ReplayPrompts, ReplaySource, UpdateRequest, parse_replay
from renewlm.versions import Paradigm

Fresh = Annotated[bool, typer.Option("--fresh", help="Start over instead of resuming the run's newest checkpoint.")]


def _report(info: dict) -> None:
    if "path" not in info:  # not the main process
        return
    console.print(f"version written: {info['path']}", highlight=False)
    table = Table()
    table.add_column("held-out corpus")
    table.add_column("loss", justify="right")
    predicted = (info.get("prediction") or {}).get("heldout") or {}  # the record's JSON
    if predicted:
        table.add_column("predicted", justify="right")
    for corpus, loss in info["losses"].items():
        table.add_row(corpus, f"{loss:.4f}", *([f"{predicted[corpus]:.4f}" if corpus in predicted else "–"] if predicted else []))
    console.print(table)
    console.print(f"{info['steps']} steps, {info['tokens']:,} tokens, {info['flops']:.3g} FLOPs", highlight=False)


@app.command()
def train(
    run: Annotated[Path, typer.Argument(help="Run YAML file.")],
    fresh: Fresh = False,
    store: StoreOption = None,
) -> None:
    """Run a fully specified training run; rerunning the same command resumes it."""
    from renewlm.train.config import load_run
    from renewlm.updates.paradigm import run_file  # torch loads only for commands that train

    _report(run_file(load_run(run), open_store(store), fresh=fresh))


# update's flags whose help takes more than a line
DataFlag = Annotated[list[str], typer.Option(
    "--data", help="New corpus, NAME or NAME:WEIGHT (repeat, or comma-separated; default weights: token counts).")]
ReplayFlag = Annotated[str, typer.Option("--replay", help="Share of every batch replayed from the lineage's corpora, in [0, 1); "
                                        "auto: the smallest whose predicted forgetting is within --forget-budget.")]
PredictFlag = Annotated[bool, typer.Option("--predict", help="Predict the update's held-out losses before it trains, and record them "
                                           "(docs/prediction.md).")]
ForgetBudgetFlag = Annotated[float | None, typer.Option("--forget-budget", help="With --replay auto: the most predicted rise of any "
                                                        "old corpus's held-out loss, in nats.", show_default=False)]
ReplayFromFlag = Annotated[list[str] | None, typer.Option("--replay-from", help="Replay these corpora instead of the lineage's.")]
ReplaySourceFlag = Annotated[ReplaySource, typer.Option(
    "--replay-source", help="data: replay corpora (the lineage's or --replay-from); parent: replay text sampled from the parent.")]
ReplayTemperatureFlag = Annotated[float | None, typer.Option(
    "--replay-temperature", help="With --replay-source parent: the sampling temperature [default: 1].", show_default=False)]
ReplayPromptsFlag = Annotated[ReplayPrompts | None, typer.Option(
    "--replay-prompts", help="With --replay-source parent: sample from BOS (bos) or from new-data documents' starts (data) "
    "[default: bos].", show_default=False)]
TokenizerFlag = Annotated[str | None, typer.Option(
    "--tokenizer", help="An extension of the parent's tokenizer (tokenizer extend): embeddings grow to it.")]
RecipeFlag = Annotated[Recipe | None, typer.Option(
    "--recipe", help="Learning-rate recipe (default cosine: re-warm and re-decay).", show_default=False)]
ParadigmFlag = Annotated[Paradigm, typer.Option(
    "--paradigm", help="continue: from the weights; switch: path switching (trunk + release); retrain: from scratch.")]
DecayFractionFlag = Annotated[float, typer.Option(
    "--decay-fraction", help="switch: the release's decay, as a share of the update's tokens.")]
ReleaseFlag = Annotated[ReleaseKind, typer.Option(
    "--release", help="switch: decay (a decay branch off the trunk) or average (the trunk's last steps averaged, no decay run).")]
AverageWindowFlag = Annotated[int | None, typer.Option(
    "--average-window", help="With --release average: average the trunk's last N steps (default: 10%).")]
ThenFlag = Annotated[list[str] | None, typer.Option(
    "--then", help="reuse recipe: the second blend's corpora, from LR = start/5 on (see --switch-at).")]
SwitchAtFlag = Annotated[float | None, typer.Option(
    "--switch-at", help="With --then: start the second blend at LR = start/R (default 5).")]


@app.command()
def update(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    parent: Annotated[str, typer.Option("--from", help="The version to update.")],
    data: DataFlag,
    replay: ReplayFlag = "0",
    replay_from: ReplayFromFlag = None,
    replay_source: ReplaySourceFlag = "data",
    replay_temperature: ReplayTemperatureFlag = None,
    replay_prompts: ReplayPromptsFlag = None,
    tokenizer: TokenizerFlag = None,
    recipe: RecipeFlag = None,
    lr: Annotated[float | None, typer.Option(help="Top LR of the recipe (default: from the parent's schedule).")] = None,
    tokens: Annotated[str | None, typer.Option(help="Training tokens: 2000000000, 2e9 or 2B.")] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (instead of --tokens).")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Sequence length (default: the parent's).")] = None,
    batch_tokens: Annotated[int | None, typer.Option(help="Global batch in tokens (default: the parent's).")] = None,
    micro_batch: Annotated[int | None, typer.Option(help="Sequences per forward pass per process.")] = None,
    eval_every: Annotated[int, typer.Option(help="Held-out evaluation every N steps.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Checkpoint every N steps.")] = 0,
    paradigm: ParadigmFlag = "continue",
    decay_fraction: DecayFractionFlag = 0.1,
    release: ReleaseFlag = "decay",
    average_window: AverageWindowFlag = None,
    then: ThenFlag = None,
    switch_at: SwitchAtFlag = None,
    seed: Annotated[int, typer.Option(help="Data-order seed.")] = 0,
    predict: PredictFlag = False,
    forget_budget: ForgetBudgetFlag = None,
    fresh: Fresh = False,
    store: StoreOption = None,
) -> None:
    """A new version from new data, with the papers' defaults filled in."""
    from renewlm.counts import parse_tokens
    from renewlm.updates.paradigm import run_update  # torch loads only for commands that train

    request = UpdateRequest(  # every flag checked before the store is opened
        name=name, parent=parent, data=names(data), paradigm=paradigm, decay_fraction=decay_fraction, recipe=recipe,
        release=release, average_window=average_window,
        then=names(then) if then else None, switch_at=switch_at, replay=parse_replay(replay),
        replay_from=names(replay_from) if replay_from else None, replay_source=replay_source,
        replay_temperature=replay_temperature, replay_prompts=replay_prompts, tokenizer=tokenizer, lr=lr, steps=steps,
        tokens=None if tokens is None else round(parse_tokens(tokens, "--tokens")),
        seq_len=seq_len, batch_tokens=batch_tokens, micro_batch=micro_batch, eval_every=eval_every,
        checkpoint_every=checkpoint_every, seed=seed, predict=predict, forget_budget=forget_budget,
    )
    st = open_store(store)
    _report(run_update(st, request, fresh=fresh, announce=say_probe_cost(st), predicted=print_update_prediction))
