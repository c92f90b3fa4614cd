"""`renewlm sweep NAME --from V --data C ...`: LR and duration sweeps, dataset characterization, a mixture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import count, counts, names, numbers
from renewlm.counts import DEFAULT_EVAL_TOKENS
from renewlm.errors import ConfigError


@app.command()
def sweep(
    name: Annotated[str, typer.Argument(help="Name of the sweep (its record: sweeps/NAME/sweep.json).")],
    parent: Annotated[str | None, typer.Option("--from", help="The version every point starts from.")] = None,
    data: Annotated[list[str] | None, typer.Option("--data", help="Candidate corpora (repeat, or comma-separated).")] = None,
    lrs: Annotated[list[str] | None, typer.Option("--lrs", help="Peak LRs of the grid (repeat, or comma-separated) [default: 1e-5,3e-5,1e-4,3e-4].")] = None,
    tokens: Annotated[str | None, typer.Option("--tokens", help="Tokens of each LR-grid run: 1000000000, 1e9 or 1B [default: 1e9].")] = None,
    durations: Annotated[list[str] | None, typer.Option("--durations", help="Increasing token counts of the duration sweep, e.g. 1B,2B,4B [default: --tokens × 1,2,4].")] = None,
    replay: Annotated[float | None, typer.Option("--replay", help="Share of every batch replayed from the lineage [default: 0].")] = None,
    seed_repeats: Annotated[int | None, typer.Option("--seed-repeats", help="Extra data-order seeds of the best LR's point, for the noise [default: 1].")] = None,
    decay_fraction: Annotated[float | None, typer.Option("--decay-fraction", help="Each duration's decay, as a share of it [default: 0.2].")] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help="lm-eval tasks to characterize with, repeat or comma-separated (needs renewlm[eval]).")] = None,
    include_path: Annotated[list[Path] | None, typer.Option("--include-path", help="A folder of lm-eval task YAML files.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Examples per lm-eval task.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Data-order seed of the grid [default: 0].")] = None,
    target: Annotated[str | None, typer.Option("--target", help="A corpus whose held-out loss chooses each candidate's LR and duration and the mixture [default: each candidate's own].")] = None,
    eval_tokens: Annotated[str | None, typer.Option("--eval-tokens", help=f"Held-out tokens per corpus, e.g. 64k [default: {DEFAULT_EVAL_TOKENS}].")] = None,
    emit: Annotated[Path | None, typer.Option("--emit", help="Write run files and a Slurm job-array script here instead of running.")] = None,
    collect: Annotated[bool, typer.Option("--collect", help="Read the finished points of an emitted sweep into its record.")] = False,
    store: StoreOption = None,
) -> None:
    """Sweep LR and duration per candidate corpus from one version; characterize each; suggest a mixture.

    Re-running the command skips finished points and resumes an interrupted one.
    """
    from renewlm.sweep import collect as collect_sweep
    from renewlm.sweep import emit as emit_sweep
    from renewlm.sweep import (  # torch loads only for commands that train
        resolve_settings,
        run_sweep,
    )

    st = open_store(store)
    given = {
        "parent": parent, "data": names(data) if data else None, "lrs": numbers(lrs, "--lrs"), "tokens": count(tokens, "--tokens"),
        "durations": counts(durations, "--durations"), "replay": replay, "seed_repeats": seed_repeats,
        "decay_fraction": decay_fraction, "tasks": names(tasks) if tasks else None,
        "include_paths": [str(p) for p in include_path] if include_path else None,
        "limit": limit, "seed": seed, "eval_tokens": count(eval_tokens, "--eval-tokens"), "target": target,
    }
    say = lambda line: console.print(f"[dim]{line}[/]", highlight=False)
    if collect:
        extra = [k for k, v in given.items() if v is not None] + (["emit"] if emit else [])
        if extra:
            raise ConfigError(f"--collect reads the sweep as recorded; leave out {', '.join('--' + k.replace('_', '-') for k in extra)}")
        show(collect_sweep(st, name, say=say), st, name)
        return
    settings = resolve_settings(st, name, given)
    if emit is not None:
        files, script = emit_sweep(st, name, settings, emit)
        if script is None:
            console.print(f"nothing to emit: every point of sweep {name} that can run is done; run `renewlm sweep {name} --collect`")
            return
        console.print(f"{sum(map(len, files))} run files in {len(files)} tasks under {emit}", highlight=False)
        console.print(f"submit: sbatch {script}\nthen:   renewlm sweep {name} --collect --store {st.root}", highlight=False)
        return
    show(run_sweep(st, name, settings, say=say), st, name)


def show(record: dict, store, name: str) -> None:
    progress = record["progress"]
    later = any(e["best_lr"] is None for e in record["corpora"].values())  # stage 2 is planned once stage 1 is done
    target = (record.get("settings") or {}).get("target")
    table = Table(title=f"sweep {name} from {record['parent']}: {progress['done']} of {progress['planned']}"
                        f"{' plannable' if later else ''} points done" + (f"; chosen by the held-out loss on {target}" if target else ""))
    for column in ("corpus", "best LR", "best tokens", "spread", "helps", "hurts", "unchanged", "mixture"):
        # fold, not "…": a narrow terminal breaks an evaluation's name over lines instead of cutting it
        table.add_column(column, justify="right" if column in ("best LR", "best tokens", "spread") else "left", overflow="fold")
    for corpus, e in record["corpora"].items():
        verdicts = {"helps": [], "hurts": [], "unchanged": []}
        for evaluation, c in (e["characterization"] or {}).items():
            verdicts[c["verdict"]].append(f"{evaluation} {c['delta']:+.3f}")
        table.add_row(
            corpus, "–" if e["best_lr"] is None else f"{e['best_lr']:g}",
            "–" if e["best_tokens"] is None else f"{e['best_tokens']:,}",
            "–" if e["spread"] is None else f"{e['spread']:.3f}",
            *("\n".join(verdicts[k]) or "–" for k in ("helps", "hurts", "unchanged")),
            "–" if e["in_mixture"] is None else ("yes" if e["in_mixture"] else "no"),
        )
    table.caption = "helps/hurts: the best point against the parent by more than the spread over data-order seeds"
    console.print(table)
    cost = record["cost"]
    if cost:
        console.print(
            f"duration sweeps: {cost['tokens']:,} tokens / {cost['flops']:.3g} FLOPs against {cost['independent_tokens']:,} / "
            f"{cost['independent_flops']:.3g} for independent runs (a saving of {cost['saving']:.0%}); "
            f"the whole sweep: {cost['all_tokens']:,} tokens / {cost['all_flops']:.3g} FLOPs", highlight=False,
        )
    if record["suggested_mixture"]:
        console.print(f"suggested mixture: {store.path('sweeps', name) / 'mixture.yaml'}", highlight=False)
    elif all(e["in_mixture"] is not None for e in record["corpora"].values()):
        console.print(f"no corpus helps {f'the target {target}' if target else 'its own held-out loss'} without hurting the "
                      "lineage: no mixture suggested", highlight=False)
    if progress["done"] < progress["planned"] or later:
        left = progress["planned"] - progress["done"]
        console.print(f"{left} points still to run" + (", then the next stage (run the command again, or --emit again after "
                      "--collect)" if later else ""), highlight=False)
