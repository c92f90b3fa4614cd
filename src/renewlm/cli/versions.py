"""`renewlm versions`, `show`, `import`, `export`, `rm`: the version tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.versions import (
    VersionRecord, cost, export_version, import_version, list_versions, predicted_text, read_evaluations, read_version,
    remove_version,
)
from renewlm.versions.lineage import display_tree


def _cost_text(c: dict) -> str:
    text = f"own {c['tokens']:,} tokens / {c['flops']:.3g} FLOPs, cumulative {c['cumulative_flops']:.3g} FLOPs"
    if c["series_ratio"] is not None and len(c["series"]) > 1:  # a trunk has no series: it is not released
        text += f", {len(c['series'])} releases at {c['series_ratio']:.0%} of retraining each"
    return text


def _line(meta: VersionRecord, c: dict, evaluations: dict) -> str:
    losses = ", ".join(f"{corpus} {v:.3f}" for corpus, v in meta.losses.items())
    others = meta.parent_names[1:]
    line = f"[bold]{meta.name}[/] ({meta.kind}) {_cost_text(c)}"
    line += f" — held-out {losses}" if losses else ""
    if predicted := predicted_text(meta.prediction, meta.losses):
        line += f" ({predicted})"
    summary = evaluations.get("summary") or {}  # what `renewlm eval` measured
    measured = [f"{key} {summary[key]:+.3f}" for key in ("adaptation", "forgetting") if summary.get(key) is not None]
    if (core := evaluations.get("core_average") or {}).get("core_average") is not None:
        measured.append(f"core average {core['core_average']:.3f}")
    line += f"; {', '.join(measured)}" if measured else ""
    line += f" [dim](also from {', '.join(others)})[/]" if others else ""
    return f"[dim]{line}[/]" if meta.kind == "trunk" else line


@app.command()
def versions(store: StoreOption = None) -> None:
    """The version tree: releases in series, each trunk dimmed under the release that branched off it."""
    st = open_store(store)
    metas = {m.name: m for m in list_versions(st)}
    if not metas:
        console.print(f"no versions in {st.root}")
        return
    under = display_tree(st, metas)
    tree = Tree(f"versions in {st.root}")

    def add(name: str, node) -> None:
        branch = node.add(_line(metas[name], cost(st, name, metas), read_evaluations(st, name)))
        # Trunks first: each sits right under the release that branched off it.
        for child in sorted((n for n, p in under.items() if p == name), key=lambda n: (metas[n].kind != "trunk", n)):
            add(child, branch)

    for name in sorted(n for n, p in under.items() if p is None):
        meta = metas[name]
        outside = [p for p in meta.parent_names if p not in metas]
        add(name, tree.add(f"[dim]from {', '.join(outside)}[/]") if outside else tree)
    console.print(tree)


@app.command()
def show(name: Annotated[str, typer.Argument(help="Version name.")], store: StoreOption = None) -> None:
    """A version's record, lineage and cost against retraining."""
    st = open_store(store)
    meta = read_version(st, name)
    c = cost(st, name)  # before printing anything: a lineage that goes round is refused in one sentence
    console.print_json(meta.model_dump_json())
    if evaluations := read_evaluations(st, name):  # what `renewlm eval` measured, kept beside the record
        console.print_json(json.dumps({"evaluations": evaluations}))
    console.print(f"lineage: {' → '.join(c['lineage'])}", highlight=False)
    if predicted := predicted_text(meta.prediction, meta.losses):  # the run's own final evaluation, the probe's evaluator
        console.print(f"predicted before training (probe {meta.prediction.probe}): {predicted}", highlight=False)
    console.print(f"cost: {_cost_text(c)}; {c['cumulative_tokens']:,} tokens along the lineage", highlight=False)
    if c["retrain_flops"] is not None and c["data_tokens"]:  # no data on record (ancestors removed): unknown, not 0
        console.print(
            f"retraining it from scratch on the {c['data_tokens']:,} tokens of data it has seen: {c['retrain_flops']:.3g} FLOPs",
            highlight=False,
        )
    if c["series_ratio"] is not None and len(c["series"]) > 1:
        console.print(
            f"its series ({', '.join(c['series'])}): {c['series_flops']:.3g} FLOPs spent, retraining each "
            f"{c['series_retrain_flops']:.3g}: {c['series_ratio']:.0%}, a saving of {1 - c['series_ratio']:.0%}",
            highlight=False,
        )


@app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    folder: Annotated[Path, typer.Option("--from", help="A local Hugging Face model folder (safetensors weights).")],
    pretrain_tokens: Annotated[
        str | None, typer.Option("--pretrain-tokens", help="Tokens the model was pre-trained on, for the ledger (2e12 or 2T).")
    ] = None,
    pretrain_seq_len: Annotated[
        int | None, typer.Option("--pretrain-seq-len", help="Sequence length of that pre-training, for its FLOPs (default: the model's maximum positions, at most 8,192).")
    ] = None,
    peak_lr: Annotated[float | None, typer.Option("--peak-lr", help="Peak learning rate of its pre-training (update's default LR).")] = None,
    final_lr: Annotated[float | None, typer.Option("--final-lr", help="Final (minimum) learning rate of its pre-training.")] = None,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code", help="Run the folder's own model code.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a version of that name.")] = False,
    store: StoreOption = None,
) -> None:
    """Bring a Hugging Face model folder into the store as a root version."""
    from renewlm.counts import parse_tokens

    path = import_version(
        open_store(store), name, folder, trust_remote_code=trust_remote_code, overwrite=overwrite,
        pretrain_tokens=None if pretrain_tokens is None else round(parse_tokens(pretrain_tokens, "--pretrain-tokens")),
        pretrain_seq_len=pretrain_seq_len, peak_lr=peak_lr, final_lr=final_lr,
    )
    console.print(f"version {name}: {path}")


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="Version name.")],
    to: Annotated[Path, typer.Option("--to", help="Folder to write.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in that folder (nothing else).")] = False,
    store: StoreOption = None,
) -> None:
    """Write a version out as a plain Hugging Face folder."""
    console.print(f"exported {name} to {export_version(open_store(store), name, to, overwrite=overwrite)}")


@app.command()
def rm(
    name: Annotated[str, typer.Argument(help="Version name.")],
    force: Annotated[bool, typer.Option("--force", help="Remove it even if other versions descend from it.")] = False,
    store: StoreOption = None,
) -> None:
    """Remove a version."""
    remove_version(open_store(store), name, force=force)
    console.print(f"removed version {name}")
