"""`renewlm schedule show|plot`: learning-rate curves before any compute is spent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import app, console
from renewlm.cli.options import count, renamed
from renewlm.errors import ConfigError
from renewlm.optim.schedule import Schedule, load_schedule
from renewlm.store import check_output, write_png

schedule_app = typer.Typer(help="Inspect learning-rate schedules.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

Steps = Annotated[int, typer.Option("--steps", help="Optimizer steps of the run.")]
TokensPerStep = Annotated[str | None, typer.Option("--tokens-per-step", help="Global batch in tokens (e.g. 4M), for lengths given in tokens.")]


# A chart is at most ~1,000 pixels wide: past this many steps, draw a sample that keeps every boundary.
PLOT_POINTS = 5000


def key_steps(schedule: Schedule) -> list[int]:
    """Step 0, every stage boundary and event, quarter points inside each stage, and the end."""
    steps = {0, schedule.total_steps, *schedule.events.values()}
    for stage in schedule.stages:
        span = stage.end - stage.start
        steps.update(stage.start + span * k // 4 for k in range(1, 4))
        steps.add(stage.end - 1)
    return sorted(s for s in steps if 0 <= s <= schedule.total_steps)


@schedule_app.command("show")
def show(
    spec: Annotated[Path, typer.Argument(help="Schedule YAML file.")],
    steps: Steps,
    csv: Annotated[bool, typer.Option("--csv", help="Every step as CSV (step,lr) instead of key points.")] = False,
    tokens_per_step: TokensPerStep = None,
) -> None:
    """The learning rate at key points of a run (or at every step with --csv)."""
    loaded = load_schedule(spec)
    schedule = loaded.build(steps, count(tokens_per_step, "--tokens-per-step"))
    if csv:
        print("step,lr")
        for step in range(steps + 1):
            print(f"{step},{schedule.lr(step)!r}")  # repr: the exact float the optimizer gets
        return
    events = {}
    for name, step in schedule.events.items():
        events.setdefault(step, []).append(name)
    table = Table(title=f"{spec.name} ({loaded.name}): {steps:,} steps, peak lr {schedule.peak_lr:.4g}")
    for column, justify in (("step", "right"), ("fraction", "right"), ("lr", "right"), ("stage", "left"), ("events", "left")):
        table.add_column(column, justify=justify)
    for step in key_steps(schedule):
        table.add_row(f"{step:,}", f"{step / steps:.3f}", f"{schedule.lr(step):.4e}", schedule.stage_at(step), ", ".join(events.get(step, [])))
    console.print(table)


@schedule_app.command("plot")
def plot(
    specs: Annotated[list[Path], typer.Argument(help="Schedule YAML files, drawn on one chart.")],
    steps: Steps,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="PNG file to write.", show_default=False)] = None,
    tokens_per_step: TokensPerStep = None,
    log: Annotated[bool, typer.Option("--log", help="Logarithmic learning-rate axis (a zero LR is left out).")] = False,
    output: Annotated[Path | None, typer.Option("--output", hidden=True, help="Old spelling of --out.")] = None,
) -> None:
    """Draw several schedules on one chart, with stage boundaries marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output = renamed(out, output, "--output", "--out")
    if output is None:
        raise ConfigError("schedule plot needs the PNG file to write; add --out FILE.png")
    if output.suffix.lower() != ".png":
        raise ConfigError(f"--out {output} should be a .png file")
    check_output(output, "--out")
    schedules = [(path, load_schedule(path)) for path in specs]
    # constrained layout makes room for the legend below the axes, where it covers no curve
    fig, ax = plt.subplots(figsize=(9, 5), dpi=120, layout="constrained")
    for path, spec in schedules:
        schedule = spec.build(steps, count(tokens_per_step, "--tokens-per-step"))
        xs = sorted({*range(0, steps + 1, max(1, steps // PLOT_POINTS)), *key_steps(schedule)})
        (line,) = ax.plot(xs, [schedule.lr(x) for x in xs], label=f"{path.stem} ({spec.name})")
        for stage in schedule.stages[1:]:
            ax.axvline(stage.start, color=line.get_color(), linestyle=":", linewidth=1)
        if "switch" in schedule.events:
            ax.axvline(schedule.events["switch"], color=line.get_color(), linestyle="--", linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_xlim(0, steps)
    if log:
        ax.set_yscale("log", nonpositive="mask")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3, which="both" if log else "major")
    fig.legend(loc="outside lower center", ncols=min(3, len(schedules)), frameon=False)
    console.print(f"wrote {write_png(fig, output)}")
