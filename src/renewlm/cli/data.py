"""`renewlm tokenizer train`, `renewlm prepare`, `renewlm corpora`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from renewlm.cli.app import StoreOption, app, console, open_store

tokenizer_app = typer.Typer(help="Tokenizers: train one for from-scratch models, or extend one to new text.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")

Inputs = Annotated[list[Path], typer.Option("--input", help="Input file or folder (repeat for several).")]
TextField = Annotated[str, typer.Option("--text-field", help="Field holding the text in jsonl/json/parquet/csv/datasets.")]
SplitBlank = Annotated[bool, typer.Option("--split-blank-lines", help="In .txt files, one document per blank-line-separated paragraph.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an existing entry of that name.")]
InputFormat = Annotated[str | None, typer.Option(
    "--format", help="Read every input file as jsonl, json, parquet, csv or txt, whatever its name (default: by extension).",
)]


@tokenizer_app.command("train")
def tokenizer_train(
    name: Annotated[str, typer.Argument(help="Name of the tokenizer in the store.")],
    inputs: Inputs,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Vocabulary size, EOS included.")],
    text_field: TextField = "text",
    split_blank_lines: SplitBlank = False,
    input_format: InputFormat = None,
    overwrite: Overwrite = False,
    store: StoreOption = None,
) -> None:
    """Train a byte-level BPE tokenizer (with an EOS token) and save it in the store."""
    from renewlm.data.tokenizer import train_tokenizer

    path = train_tokenizer(open_store(store), name, inputs, vocab_size, text_field=text_field,
                           split_blank_lines=split_blank_lines, input_format=input_format, overwrite=overwrite)
    console.print(f"tokenizer {name}: {path}")


@tokenizer_app.command("extend")
def tokenizer_extend(
    name: Annotated[str, typer.Argument(help="Name of the extended tokenizer in the store.")],
    base: Annotated[str, typer.Option("--from", help="Tokenizer to extend: a store tokenizer, a version (its tokenizer) or a Hugging Face folder.")],
    inputs: Inputs,
    add: Annotated[int, typer.Option("--add", help="New tokens to learn (fewer where fewer pairs occur twice).")],
    text_field: TextField = "text",
    split_blank_lines: SplitBlank = False,
    input_format: InputFormat = None,
    overwrite: Overwrite = False,
    store: StoreOption = None,
) -> None:
    """Continue a BPE tokenizer's training on new text: new merges and ids after the old ones, old ids unchanged."""
    from renewlm.data.tokenizer_extend import extend_tokenizer

    with console.status(f"extending {base} into {name}"):
        done = extend_tokenizer(open_store(store), name, base, inputs, add, text_field=text_field,
                                split_blank_lines=split_blank_lines, input_format=input_format, overwrite=overwrite)
    chars = f" ({done['characters']:,} of them characters the base lacked)" if done["characters"] else ""
    console.print(
        f"tokenizer {name}: {done['tokens']:,} new tokens{chars}, ids {done['first_id']:,}–{done['vocab_size'] - 1:,}, "
        f"{done['merges']:,} merges after the base's, learned from {done['words']:,} distinct words in {done['documents']:,} documents"
    )
    if done["tokens"] < add:
        console.print(f"note: only {done['tokens']:,} of the {add:,} asked for: no other pair occurs at least twice in the input")
    console.print(f"written to {open_store(store).path('tokenizers', name)}")


@app.command()
def prepare(
    name: Annotated[str, typer.Argument(help="Name of the corpus in the store.")],
    inputs: Inputs,
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="Store tokenizer or version name, or a Hugging Face folder.")],
    text_field: TextField = "text",
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of documents held out, chosen by content hash.")] = 0.005,
    min_heldout_tokens: Annotated[str, typer.Option(
        "--min-heldout-tokens",
        help="Move training documents (the last one cut) to the held-out split, by content hash, until it holds "
        "this many tokens (38889, 38,889 or 39k).",
    )] = "0",
    input_format: InputFormat = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Tokenizing processes (default: all cores).")] = None,
    split_blank_lines: SplitBlank = False,
    overwrite: Overwrite = False,
    store: StoreOption = None,
) -> None:
    """Tokenize raw files into a corpus of memory-mapped shards with a held-out split."""
    from renewlm.data.heldout import heldout_warning
    from renewlm.data.prepare import prepare as prepare_corpus
    from renewlm.counts import parse_tokens

    heldout_tokens = round(parse_tokens(min_heldout_tokens, "--min-heldout-tokens"))
    tokens = [0]
    with console.status(f"preparing {name}") as status:  # shown on a terminal only

        def progress(p: dict) -> None:
            tokens[0] += p["tokens"]
            status.update(f"preparing {name}: {p['documents']:,} documents, {tokens[0]:,} tokens, {p['seconds']:.0f} s")

        corpus = prepare_corpus(open_store(store), name, inputs, tokenizer, text_field=text_field, val_fraction=val_fraction,
                                min_heldout_tokens=heldout_tokens, input_format=input_format, workers=workers,
                                overwrite=overwrite, split_blank_lines=split_blank_lines, progress=progress)
    m = corpus.manifest
    console.print(
        f"corpus {name}: {m['train']['tokens']:,} train tokens in {m['train']['documents']:,} documents, "
        f"{m['val']['tokens']:,} held-out tokens in {m['val']['documents']:,} documents ({m['dtype']}, {m['seconds']:.1f} s)"
    )
    for key, what in (("replaced_characters", "invalid UTF-8 sequence(s) replaced by U+FFFD"),
                      ("empty_documents", "empty document(s) skipped"),
                      ("skipped_files", "file(s) of unknown format in the input folders skipped"),
                      ("skipped_links", "link(s) in the input folders leading outside them skipped")):
        if m.get(key):
            console.print(f"note: {m[key]:,} {what}")
    added = m.get("heldout_added")
    if added and m["min_heldout_tokens"]:
        cut = f" and the last {added['chunk_tokens']:,} tokens of another" if added["chunk_tokens"] else ""
        console.print(f"note: {added['whole_documents']:,} training document(s){cut} moved to the held-out split "
                      f"to reach --min-heldout-tokens {m['min_heldout_tokens']}")
    elif added:
        what = (f"the last {added['chunk_tokens']:,} tokens of the training document of smallest hash moved" if added["chunk_tokens"]
                else f"the training document of smallest hash ({added['tokens']:,} tokens) moved whole")
        console.print(f"note: the content hash held out no document, so {what} to the held-out split")
    console.print(f"written to {corpus.path}")
    warning = heldout_warning(m)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


@app.command()
def corpora(store: StoreOption = None) -> None:
    """List the corpora in the store."""
    from renewlm.data.corpus import list_corpora

    st = open_store(store)
    table = Table(title=f"corpora in {st.root}")
    numbers = ("train tokens", "train documents", "held-out tokens", "held-out documents")
    for column in ("name", *numbers, "tokenizer", "sources"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for m in list_corpora(st):
        sources = ", ".join(Path(s["path"]).name for s in m["sources"])
        table.add_row(
            m["name"], f"{m['train']['tokens']:,}", f"{m['train']['documents']:,}", f"{m['val']['tokens']:,}",
            f"{m['val']['documents']:,}", f"{m['tokenizer']['ref']} ({m['tokenizer']['fingerprint'][:8]})", sources,
        )
    console.print(table)
