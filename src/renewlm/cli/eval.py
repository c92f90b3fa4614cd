"""`renewlm eval V...`: the versions × corpora matrix, adaptation and forgetting, lm-eval tasks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.cli.options import count, names, renamed
from renewlm.counts import DEFAULT_EVAL_MICRO_BATCH, DEFAULT_EVAL_TOKENS
from renewlm.errors import DiskError
from renewlm.versions import predicted_text, read_version


@app.command("eval")
def eval_cmd(
    versions: Annotated[list[str], typer.Argument(help="Versions to evaluate (each against the others: list parents too).")],
    data: Annotated[list[str] | None, typer.Option("--data", help="Corpora for held-out loss, repeat or comma-separated (default: every corpus of the versions' lineages).")] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help="lm-eval tasks or groups, repeat or comma-separated (needs renewlm[eval]).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Examples per lm-eval task (default: all).")] = None,
    num_fewshot: Annotated[int | None, typer.Option("--num-fewshot", help="Few-shot examples per prompt (default: each task's own).")] = None,
    batch_size: Annotated[str, typer.Option("--batch-size", help="lm-eval requests per forward pass, or auto.")] = "auto",
    include_path: Annotated[list[Path] | None, typer.Option("--include-path", help="A folder of lm-eval task YAML files (local tasks, offline).")] = None,
    core: Annotated[Path | None, typer.Option("--core", help="YAML of core-average tasks replacing or adding to the shipped ones.")] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", help="Held-out window length (default: the shortest the versions trained at).")] = None,
    eval_tokens: Annotated[str | None, typer.Option("--eval-tokens", help=f"Held-out tokens per corpus, e.g. 64k [default: {DEFAULT_EVAL_TOKENS}].")] = None,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Held-out windows per forward pass.")] = DEFAULT_EVAL_MICRO_BATCH,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")] = False,
    store: StoreOption = None,
    corpora: Annotated[list[str] | None, typer.Option("--corpora", hidden=True, help="Old spelling of --data.")] = None,
) -> None:
    """Held-out loss and perplexity of versions on corpora, adaptation and forgetting, lm-eval tasks.

    Results are merged into each version's evaluations.json (its weights and version.json stay as they are).
    """
    from renewlm.eval.compare import check, evaluate_versions, record  # torch loads only here

    data = renamed(data, corpora, "--corpora", "--data")
    st = open_store(store)
    plan = check(
        st, versions, corpora=names(data) if data else None, tasks=names(tasks), include_paths=include_path or (), limit=limit,
        num_fewshot=num_fewshot, batch_size=batch_size, seq_len=seq_len,
        eval_tokens=DEFAULT_EVAL_TOKENS if eval_tokens is None else count(eval_tokens, "--eval-tokens"),
        micro_batch=micro_batch, core=core,
    )
    say = (lambda line: None) if as_json else (lambda line: console.print(f"[dim]{line}[/]"))
    for note in plan.notes:
        say(f"note: {note}")
    result = evaluate_versions(st, plan, say=say)
    try:
        record(st, result)
        unsaved = None
    except DiskError as e:  # a read-only store can still be evaluated: print the numbers, say they were not kept
        unsaved = f"warning: the results were not saved to evaluations.json: {e}"
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print(matrix_table(result))
        console.print(bytes_table(result))
        if plan.tasks:
            console.print(tasks_table(result, plan.core))
        for name, entry in result["versions"].items():
            for note in entry["summary"]["notes"]:
                console.print(f"[dim]{name}: {note}[/]")
            measured = {c: e["loss"] for c, e in entry["heldout"].items()}
            if predicted := predicted_text(read_version(st, name).prediction, measured):
                console.print(f"{name}, predicted before training: {predicted} (here)", highlight=False)
    if unsaved:
        print(unsaved, file=sys.stderr)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def matrix_table(result: dict) -> Table:
    s = result["settings"]
    table = Table(title=f"held-out loss (perplexity), {s['eval_tokens']:,} tokens per corpus at seq_len {s['seq_len']}")
    table.add_column("version")
    for c in result["corpora"]:
        table.add_column(c, justify="right")
    table.add_column("adaptation", justify="right")
    table.add_column("forgetting", justify="right")
    for name, entry in result["versions"].items():
        cells = []
        for c in result["corpora"]:
            e = entry["heldout"].get(c)
            mark = "*" if c in entry["summary"]["updated_on"] else ""
            cells.append("–" if e is None else f"{e['loss']:.3f} ({e['perplexity']:.1f}){mark}")
        table.add_row(name, *cells, _signed(entry["summary"]["adaptation"]), _signed(entry["summary"]["forgetting"]))
    table.caption = "* the version was updated on this corpus; adaptation: loss gained there against its parent; forgetting: mean loss lost on older corpora against the best earlier version"
    return table


def bytes_table(result: dict) -> Table:
    """The matrix's losses per byte of held-out text: they compare across tokenizers, losses per token do not."""
    table = Table(title="held-out bits per byte (bytes per token), comparable across tokenizers")
    table.add_column("version")
    for c in result["corpora"]:
        table.add_column(c, justify="right")
    for name, entry in result["versions"].items():
        cells = []
        for c in result["corpora"]:
            e = entry["heldout"].get(c) or {}
            bpb, per_token = e.get("bits_per_byte"), e.get("bytes_per_token")
            cells.append("–" if bpb is None else f"{bpb:.3f} ({per_token:.2f})")
        table.add_row(name, *cells)
    return table


def tasks_table(result: dict, core) -> Table:
    tasks = list(dict.fromkeys(t for e in result["versions"].values() for t in e.get("tasks", {})))
    table = Table(title="lm-eval tasks" + (f" ({result['settings']['num_fewshot']}-shot)" if result["settings"].get("num_fewshot") is not None else ""))
    table.add_column("version")
    for t in tasks:
        metric = core.tasks[t].metric if core and t in core.tasks else None
        table.add_column(f"{t} {metric or ''}".strip(), justify="right")
    table.add_column("core average", justify="right")
    for name, entry in result["versions"].items():
        cells = []
        for t in tasks:
            numbers = entry.get("tasks", {}).get(t, {})
            metric = core.tasks[t].metric if core and t in core.tasks else next((m for m in numbers if not m.endswith("_stderr")), None)
            cells.append("–" if metric not in numbers else f"{numbers[metric]:.4g}" + ("" if core and t in core.tasks else f" {metric}"))
        average = entry.get("core_average")
        cells.append("–" if average is None else f"{average['core_average']:.3f}")
        table.add_row(name, *cells)
    return table
