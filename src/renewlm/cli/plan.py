"""`renewlm plan`: tokens, FLOPs and hours of retrain / continue / switch / average for N releases, before any compute is
spent; with `--from V --data C --predict`, one update's held-out losses predicted (cli/predict.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import renamed
from renewlm.counts import parse_tokens
from renewlm.errors import ConfigError
from renewlm.store import check_output
from renewlm.updates.plan import (
    DEFAULT_DECAY_FRACTION, SHOWN, Plan, cumulative, format_count, make_plan, plot_plan,
)
from renewlm.updates.request import Recipe

WHAT = {
    "retrain": "from scratch on all data so far: i·T at release i",
    "continue": "the last release on the new data: T per release",
    "switch": "trunk over the new data + branch decaying over A of it: (1+A)·T",
    "average": "switch with averaged releases (--release average): trunk over the new data, its last steps averaged: T",
}


@app.command("plan")
def plan_cmd(
    releases: Annotated[int | None, typer.Option("--releases", help="Number of releases N (the first one is pre-training).", show_default=False)] = None,
    tokens_per_release: Annotated[str | None, typer.Option("--tokens-per-release", help="New tokens T per release: 10B, 500M, 1e10.", show_default=False)] = None,
    pretrain_tokens: Annotated[str | None, typer.Option("--pretrain-tokens", help="Release 1 is one pre-training of P tokens, shared by every paradigm (default: T, like the rest).", show_default=False)] = None,
    model: Annotated[str | None, typer.Option("--model", help="A preset (tiny ... 1b) or a version in the store (default 1b).", show_default=False)] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help="A preset's vocabulary (default 128,256, Llama 3's).", show_default=False)] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", help="Tokens per sequence (default: the version's, else 2,048).", show_default=False)] = None,
    decay_fraction: Annotated[float | None, typer.Option("--decay-fraction", help=f"switch: a branch's decay, as a share A of the update's tokens (default {DEFAULT_DECAY_FRACTION}).", show_default=False)] = None,
    replay: Annotated[list[float] | None, typer.Option("--replay", help="Share F of every update batch given to old data (with --predict: repeat, one candidate each).", show_default=False)] = None,
    tokens_per_second: Annotated[float | None, typer.Option("--tokens-per-second", help="Training speed for hours (default: measured in the store's runs).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also draw cumulative cost per paradigm to this PNG file.", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON instead of a table.")] = False,
    parent: Annotated[str | None, typer.Option("--from", help="--predict: the version an update would start from.", show_default=False)] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="--predict: the update's new corpora, NAME or NAME:WEIGHT.", show_default=False)] = None,
    predict: Annotated[bool, typer.Option("--predict", help="Predict an update's held-out losses (docs/prediction.md) instead of pricing releases.")] = False,
    steps: Annotated[int | None, typer.Option("--steps", help="--predict: the update's optimizer steps (or --tokens).", show_default=False)] = None,
    tokens: Annotated[str | None, typer.Option("--tokens", help="--predict: the update's training tokens.", show_default=False)] = None,
    recipe: Annotated[Recipe | None, typer.Option("--recipe", help="--predict: the update's learning-rate recipe (default cosine).", show_default=False)] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="--predict: the recipe's top LR (default: from the parent's schedule).", show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="--predict: the update's data-order seed (default 0).", show_default=False)] = None,
    curve: Annotated[Path | None, typer.Option("--curve", help="--predict: also draw the predicted loss curves to this PNG file.", show_default=False)] = None,
    store: StoreOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", hidden=True, help="Old spelling of --out.")] = None,
) -> None:
    """What N releases cost when retrained, continued, or branched off a main path (path switching); with --predict, an update's losses."""
    cost = {"--releases": releases, "--tokens-per-release": tokens_per_release, "--pretrain-tokens": pretrain_tokens, "--model": model,
            "--vocab-size": vocab_size, "--seq-len": seq_len, "--decay-fraction": decay_fraction, "--tokens-per-second": tokens_per_second,
            "--out": out or plot}
    if predict or parent is not None:
        _check_prediction(parent, data, predict, cost, curve)
        from renewlm.cli.predict import predict_update

        return predict_update(store, parent=parent, data=data, replays=replay or [], steps=steps, tokens=tokens,
                              recipe=recipe, lr=lr, seed=seed or 0, as_json=as_json, curve=curve)
    _check_pricing({"--data": data, "--steps": steps, "--tokens": tokens, "--recipe": recipe, "--lr": lr, "--seed": seed,
                    "--curve": curve}, cost, replay)
    replay_share = replay[0] if replay else 0.0
    plot = renamed(out, plot, "--plot", "--out")
    if plot is not None:
        _png(plot, "--out")
    result = make_plan(
        open_store(store),
        releases=releases,
        tokens_per_release=parse_tokens(tokens_per_release),
        model=model,
        vocab_size=vocab_size,
        seq_len=seq_len,
        decay_fraction=DEFAULT_DECAY_FRACTION if decay_fraction is None else decay_fraction,
        replay=replay_share,
        tokens_per_second=tokens_per_second,
        pretrain_tokens=None if pretrain_tokens is None else parse_tokens(pretrain_tokens, "--pretrain-tokens"),
    )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print(result, open_store(store))
    if plot is not None:
        path = plot_plan(result, plot)
        if not as_json:
            console.print(f"wrote {path}")


def _png(path: Path, flag: str) -> None:
    """A PNG file renewlm may write, checked before any work is done."""
    if path.suffix.lower() != ".png":
        raise ConfigError(f"{flag} {path} should be a .png file")
    check_output(path, flag)


def _check_prediction(parent: str | None, data: list[str] | None, predict: bool, cost: dict, curve: Path | None) -> None:
    if not (predict and parent and data):
        raise ConfigError("a prediction needs --from V, --data C and --predict: renewlm plan --from V --data C --predict")
    if given := [flag for flag, value in cost.items() if value is not None]:
        raise ConfigError(f"{', '.join(given)} price releases, not a prediction; leave them out with --predict")
    if curve is not None:
        _png(curve, "--curve")


def _check_pricing(update: dict, cost: dict, replay: list[float] | None) -> None:
    if given := [flag for flag, value in update.items() if value is not None]:
        raise ConfigError(f"{', '.join(given)} describe an update to predict: add --from V --predict, or leave them out")
    if cost["--releases"] is None or cost["--tokens-per-release"] is None:
        raise ConfigError("plan needs --releases N and --tokens-per-release T (or --from V --data C --predict for one update's losses)")
    if replay and len(replay) > 1:
        raise ConfigError("--replay takes one share when pricing releases; repeat it only with --predict")


def _print(plan: Plan, store) -> None:
    m = plan.model
    console.print(f"model: {m.description}, sequence {m.seq_len:,}: {_flops(m.flops_per_token)} FLOPs per token")
    if plan.speed is not None:
        console.print(f"speed: {plan.speed.tokens_per_second:,.0f} tokens/s ({plan.speed.source})")
    else:
        console.print(f"hours left out: no --tokens-per-second, and no run of this model in {store.root}")
    hours = plan.speed is not None
    title = f"{plan.releases} releases of {format_count(plan.tokens_per_release)} new tokens each"
    if plan.pretrain_tokens is not None:
        title = f"{plan.releases} releases: a pre-training of {format_count(plan.pretrain_tokens)} tokens, then {format_count(plan.tokens_per_release)} new tokens each"
    table = Table(title=title)
    columns = ["paradigm", "release", "tokens", "FLOPs", *(["hours"] if hours else []), "FLOPs so far", "vs retrain"]
    for column in columns:
        table.add_column(column, justify="left" if column == "paradigm" else "right", no_wrap=True)
    for paradigm in SHOWN:
        flops, ratios = plan.flops(paradigm), plan.ratios(paradigm)
        hour_list = plan.hours(paradigm) or []
        for i, (tokens, f, cum, ratio) in enumerate(zip(plan.tokens[paradigm], flops, cumulative(flops), ratios)):
            row = [paradigm if i == 0 else "", str(i + 1), format_count(tokens), _flops(f)]
            row += [_hours(hour_list[i])] if hours else []
            table.add_row(*row, _flops(cum), f"{ratio:.0%}")
        total = ["", "total", format_count(sum(plan.tokens[paradigm])), _flops(sum(flops))]
        total += [_hours(sum(hour_list))] if hours else []
        table.add_row(*total, "", f"{ratios[-1]:.0%}", style="bold", end_section=True)
    console.print(table)
    console.print(f"vs retrain: cost so far over retraining's so far; T = {format_count(plan.tokens_per_release)}, A = {plan.decay_fraction:g}")
    what = dict(WHAT)
    if plan.pretrain_tokens is not None:
        console.print(f"release 1: one pre-training of P = {format_count(plan.pretrain_tokens)} tokens, the same run in every paradigm")
        what["retrain"] = "from scratch on all data so far: P + (i−1)·T at release i"
        what["switch"] = "from release 2, trunk over the new data + branch decaying over A of it: (1+A)·T"
    for paradigm in SHOWN:
        console.print(f"  {paradigm}: {what[paradigm]}")
    if plan.replay > 0:
        update = plan.tokens_per_release / (1 - plan.replay)
        console.print(
            f"replay F = {plan.replay:g}: updates train on T/(1−F) = {format_count(update)} tokens to see all T new ones; "
            f"release 1 and retraining replay nothing"
        )


def _flops(x: float) -> str:
    return re.sub(r"e\+?0*", "e", f"{x:.3g}")


def _hours(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
