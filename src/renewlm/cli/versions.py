"""`renewlm versions`, `show`, `import`, `export`, `rm`: the version tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.tree import Tree

from renewlm.cli.app import StoreOption, app, console, open_store
from renewlm.versions import cost, export_version, import_version, list_versions, read_version, remove_version


def _line(meta: dict) -> str:
    losses = ", ".join(f"{c} {v:.3f}" for c, v in meta.get("losses", {}).items())
    tokens = meta.get("tokens", 0)
    return f"[bold]{meta['name']}[/] ({meta.get('kind')}) {tokens:,} tokens, {meta.get('flops', 0):.3g} FLOPs" + (f" — held-out {losses}" if losses else "")


@app.command()
def versions(store: StoreOption = None) -> None:
    """The version tree: each version under its parent."""
    st = open_store(store)
    metas = {m["name"]: m for m in list_versions(st)}
    tree = Tree(f"versions in {st.root}")
    nodes = {}

    def add(name: str, parent_node) -> None:
        nodes[name] = parent_node.add(_line(metas[name]))
        for child in sorted(n for n, m in metas.items() if m.get("parent") == name):
            add(child, nodes[name])

    for name, meta in sorted(metas.items()):
        if meta.get("parent") not in metas:
            label = f" (from {meta['parent']})" if meta.get("parent") else ""
            add(name, tree.add(f"[dim]root{label}[/]") if label else tree)
    console.print(tree if metas else f"no versions in {st.root}")


@app.command()
def show(name: Annotated[str, typer.Argument(help="Version name.")], store: StoreOption = None) -> None:
    """A version's record, lineage and cost."""
    st = open_store(store)
    meta = read_version(st, name)
    console.print_json(json.dumps(meta))
    c = cost(st, name)
    console.print(f"lineage: {' → '.join(c['lineage'])}")
    console.print(f"cost: own {c['tokens']:,} tokens / {c['flops']:.3g} FLOPs; with ancestors {c['cumulative_tokens']:,} tokens / {c['cumulative_flops']:.3g} FLOPs")


@app.command("import")
def import_cmd(
    name: Annotated[str, typer.Argument(help="Name of the new version.")],
    folder: Annotated[Path, typer.Option("--from", help="A local Hugging Face model folder (safetensors weights).")],
    pretrain_tokens: Annotated[int | None, typer.Option("--pretrain-tokens", help="Tokens the model was pre-trained on, for the ledger.")] = None,
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
    path = import_version(
        open_store(store), name, folder, trust_remote_code=trust_remote_code, overwrite=overwrite,
        pretrain_tokens=pretrain_tokens, pretrain_seq_len=pretrain_seq_len, peak_lr=peak_lr, final_lr=final_lr,
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
