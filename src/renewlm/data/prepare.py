"""`prepare`: raw files to a corpus, tokenized in parallel, streamed, written atomically.

The main process reads the input as work units (sources.py) and keeps at most two per worker in
flight, so memory stays flat whatever the input size. Workers parse, tokenize, append EOS and split
each document into train or held-out by a hash of its text. Results are written in input order, so
the corpus is the same for any number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import multiprocessing
import multiprocessing.pool
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from renewlm import __version__
from renewlm.data.corpus import Corpus, ShardWriter
from renewlm.data.heldout import Reserve, hold_out
from renewlm.data.sources import Unit, expand, unit_texts, units
from renewlm.data.tokenizer import fingerprint, load_tokenizer
from renewlm.errors import ConfigError, InputError
from renewlm.store import Store, write_json

# fork starts workers in milliseconds and does not re-run the caller's __main__ (spawn would, so a
# script calling prepare() without an `if __name__ == "__main__"` guard would fail). Workers use no
# threads of their parent's: the tokenizer is built anew in each, with Rust parallelism off.
_START_METHOD = "fork" if sys.platform == "linux" else "spawn"


@dataclass
class Piece:
    """A worker's output for one unit."""

    train: np.ndarray
    train_lengths: np.ndarray
    train_hashes: np.ndarray  # of each training document, for --min-heldout-tokens
    val: np.ndarray
    val_lengths: np.ndarray
    replaced: int
    empty: int


def is_heldout(text: str, val_fraction: float) -> bool:
    """The document's split, by a hash of its content: the same text always lands in the same split."""
    return _hash(_SURROGATE.sub("\ufffd", text).encode("utf-8")) < val_fraction * 2**64


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


# JSON may escape a lone UTF-16 surrogate ("\ud800"); it has no UTF-8 form, so it is replaced and
# counted like invalid UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
_state: dict = {}

# A text longer than this is tokenized in pieces: the Rust tokenizer keeps about 150 bytes per
# character of one call's input alive (offsets, token strings, alignments), so one 50 MB document
# took 7.8 GB whole.
PIECE_CHARS = 1 << 20
# A piece ends before a single space between two non-space characters. Regex pre-tokenizers
# (GPT-2, Llama 3, Qwen2 byte-level BPE) never put a space after a non-space in one pre-token, so
# the whole text has a token boundary there too, and the pieces' tokens are the whole text's.
_SEAM = re.compile(r"(?<=\S) (?=\S)")
_PROBES = (
    "It was the best of times, it was the worst of times; it was 1859.",
    "x = f(a, b) + 12 * y;  // don't   panic",
    "Über die Brücke: naïve café — 42 km, 日本語 text.",
    "one\ntwo three\n\n  four five",
)


def seam_mode(tokenizer) -> str | None:
    """How a text may be cut at a seam with its tokens unchanged: "keep" (the next piece starts at
    the space), "drop" (it starts after the space: tokenizers that prepend "▁" to every input, as
    SentencePiece conversions do), or None (no cut reproduces this tokenizer's ids: encode whole)."""
    def ids(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    whole = [(t, ids(t), [m.start() for m in _SEAM.finditer(t)]) for t in _PROBES]
    for mode, skip in (("keep", 0), ("drop", 1)):
        if all(ids(t[:c]) + ids(t[c + skip :]) == want for t, want, seams in whole for c in seams):
            return mode
    return None


def encode_long(tokenizer, text: str, mode: str | None, dtype: np.dtype, piece_chars: int = PIECE_CHARS) -> np.ndarray:
    """Token ids of `text`, encoded in pieces of about `piece_chars` characters cut at seams."""
    parts, start = [], 0
    while start < len(text):
        seam = _SEAM.search(text, start + piece_chars) if mode and len(text) - start > piece_chars else None
        stop = seam.start() if seam else len(text)
        parts.append(np.array(tokenizer.encode(text[start:stop], add_special_tokens=False).ids, dtype=dtype))
        start = stop + (1 if seam and mode == "drop" else 0)
    return np.concatenate(parts) if parts else np.empty(0, dtype)


# Workers are born with these blocked (see _pool) and unblock them once their own handlers are set.
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}
_CAN_MASK = hasattr(signal, "pthread_sigmask")


def _init_worker(*state) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process per core already
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what an interrupt does
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # and ends its workers with SIGTERM (a forked
    # worker would otherwise inherit the CLI's SIGTERM-to-KeyboardInterrupt handler). A main process
    # killed outright needs no help: its workers read end-of-file from the task pipe and exit.
    if _CAN_MASK:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)  # a pending SIGTERM ends us now
    _load_state(*state)


@contextmanager
def _pool(workers: int, init: tuple) -> Iterator[multiprocessing.pool.Pool]:
    """A pool whose workers can always be terminated. Without the mask, a SIGTERM that
    `Pool.terminate()` sends a worker still starting (input that fails at once) either runs the
    parent's inherited Python handler or is dropped by Python's after-fork signal reset; that worker
    then waits for work forever, and terminate() waits for it forever."""
    if _CAN_MASK:
        signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
    try:
        pool = multiprocessing.get_context(_START_METHOD).Pool(workers, _init_worker, init)
    except BaseException:
        if _CAN_MASK:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
        raise
    with pool:
        if _CAN_MASK:  # a Ctrl-C that came meanwhile is raised here, and the pool is ended
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)
        yield pool


def _load_state(tokenizer_json: str, eos: int, text_field: str, val_fraction: float, dtype: str) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    _state.update(tokenizer=tokenizer, eos=eos, text_field=text_field, val_fraction=val_fraction, dtype=np.dtype(dtype),
                  seam=seam_mode(tokenizer))


def _tokenize(unit: Unit) -> Piece:
    s = _state
    counter = [0]
    texts = unit_texts(unit, s["text_field"], counter)
    kept, hashes = [], []
    for text in texts:
        if not text.strip():
            continue
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            text, n = _SURROGATE.subn("\ufffd", text)
            counter[0] += n
            data = text.encode("utf-8")
        kept.append(text)
        hashes.append(_hash(data))
        del data
    short = [i for i, t in enumerate(kept) if len(t) <= PIECE_CHARS]
    ids: list = [None] * len(kept)
    for i, e in zip(short, s["tokenizer"].encode_batch_fast([kept[i] for i in short], add_special_tokens=False)):
        ids[i] = e.ids
    for i in range(len(kept)):
        if ids[i] is None:
            ids[i] = encode_long(s["tokenizer"], kept[i], s["seam"], s["dtype"])
            kept[i] = None  # the text is no longer needed; free it before the next long one
    hashes = np.array(hashes, dtype=np.uint64)
    heldout = hashes < np.uint64(math.ceil(s["val_fraction"] * 2**64))  # exactly is_heldout's test
    out = []
    for want in (False, True):
        mine = [x for x, h in zip(ids, heldout.tolist(), strict=True) if h == want]
        out += _pack(mine, s["eos"], s["dtype"])
        if not want:
            out.append(hashes[~heldout])
    return Piece(*out, replaced=counter[0], empty=len(texts) - len(kept))


def _pack(docs: list, eos: int, dtype: np.dtype) -> list[np.ndarray]:
    """Documents (id lists, or arrays for long ones) back to back, each followed by EOS."""
    lengths = np.fromiter((len(x) + 1 for x in docs), dtype=np.int64, count=len(docs))
    if not any(isinstance(x, np.ndarray) for x in docs):
        flat = np.fromiter(itertools.chain.from_iterable(x + [eos] for x in docs), dtype=dtype, count=int(lengths.sum()))
        return [flat, lengths]
    flat = np.empty(int(lengths.sum()), dtype=dtype)
    at = 0
    for x in docs:
        flat[at : at + len(x)] = x
        flat[at + len(x)] = eos
        at += len(x) + 1
    return [flat, lengths]


def _source_record(path: Path) -> dict:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = 0
    for f in files:
        with f.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
        size += f.stat().st_size
    return {"path": str(path.absolute()), "bytes": size, "sha256": digest.hexdigest()}


def _check_options(val_fraction: float, min_heldout_tokens: int, workers: int | None) -> int:
    """The options' ranges, each refused in one sentence; returns the worker count."""
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"--val-fraction {val_fraction} is outside [0, 1); use e.g. 0.005")
    if min_heldout_tokens < 0:
        raise ConfigError(f"--min-heldout-tokens {min_heldout_tokens} is negative; use 0 (off) or a number of tokens")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    return workers


def _tokenize_all(work: Iterator, init: tuple, workers: int, take: Callable[[Piece], None]) -> None:
    """Tokenize every unit of `work`, in this process or a pool, handing each piece to `take` in order."""
    if workers == 1:  # in this process, its signal handlers untouched
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one worker: one core
        _load_state(*init)
        for unit in work:
            take(_tokenize(unit))
        return
    with _pool(workers, init) as pool:
        pending: deque = deque()
        for unit in work:
            pending.append(pool.apply_async(_tokenize, (unit,)))
            if len(pending) >= 2 * workers:
                take(pending.popleft().get())
        while pending:
            take(pending.popleft().get())


def _manifest(name: str, ref, tok, vocab_size: int, dtype: np.dtype, paths: list[Path], *, sources: tuple, counts: dict,
              options: dict, seconds: float, splits: tuple[dict, dict]) -> dict:
    """corpus.json: the tokenizer, the options, the inputs and what was skipped, and the two splits."""
    skipped, outside = sources
    return {
        "name": name,
        "renewlm_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tokenizer": {
            "ref": str(ref), "fingerprint": fingerprint(tok), "vocab_size": vocab_size,
            "eos_id": tok.eos_token_id, "name_or_path": str(tok.name_or_path),
        },
        "dtype": dtype.name,
        **options,
        "sources": [_source_record(p) for p in paths],
        "skipped_files": skipped,
        "skipped_links": outside,
        "replaced_characters": counts["replaced"],
        "empty_documents": counts["empty"],
        "seconds": round(seconds, 3),
        "train": splits[0],
        "val": splits[1],
    }


def prepare(
    store: Store,
    name: str,
    inputs: list[str | Path],
    tokenizer: str | Path,
    *,
    text_field: str = "text",
    val_fraction: float = 0.005,
    min_heldout_tokens: int = 0,
    input_format: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    split_blank_lines: bool = False,
    progress: Callable[[dict], None] | None = None,
) -> Corpus:
    """Tokenize `inputs` into corpus `name`; nothing is left behind if anything fails."""
    workers = _check_options(val_fraction, min_heldout_tokens, workers)
    paths, skipped, outside = expand(inputs, input_format)
    for path in paths:
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"input {path} is empty; remove it from --input or give it content")
    tok = load_tokenizer(store, tokenizer)
    vocab_size = max(len(tok), tok.backend_tokenizer.get_vocab_size(with_added_tokens=True))
    dtype = np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)
    started = time.monotonic()
    with store.staging("corpora", name, overwrite=overwrite) as tmp:
        train, val = ShardWriter(tmp / "train", dtype), ShardWriter(tmp / "val", dtype)
        counts = {"replaced": 0, "empty": 0}
        # With no --min-heldout-tokens, the reserve keeps the one training document of smallest hash: the
        # document held out should the hash pick none (see data/heldout.py).
        reserve = Reserve(min_heldout_tokens or (1 if val_fraction > 0 else 0))

        def take(piece: Piece) -> None:
            reserve.add(piece.train_hashes, piece.train_lengths, train.documents)
            train.add(piece.train, piece.train_lengths)
            val.add(piece.val, piece.val_lengths)
            counts["replaced"] += piece.replaced
            counts["empty"] += piece.empty
            if progress:
                progress({"documents": train.documents + val.documents, "seconds": time.monotonic() - started,
                          "tokens": int(piece.train_lengths.sum() + piece.val_lengths.sum())})

        init = (tok.backend_tokenizer.to_str(), tok.eos_token_id, text_field, val_fraction, dtype.str)
        work = (unit for path in paths for unit in units(path, text_field, split_blank_lines, input_format))
        _tokenize_all(work, init, workers, take)
        train_info = train.close()
        if train_info["documents"] + val.documents == 0:
            raise InputError(f"no documents with text in {', '.join(map(str, inputs))}; check --text-field and the files")
        train_info, added = hold_out(reserve, tmp / "train", train_info, dtype, val,
                                      min_heldout_tokens=min_heldout_tokens, val_fraction=val_fraction, eos=tok.eos_token_id)
        manifest = _manifest(name, tokenizer, tok, vocab_size, dtype, paths, sources=(skipped, outside), counts=counts,
                             options={"text_field": text_field, "input_format": input_format, "val_fraction": val_fraction,
                                      "min_heldout_tokens": min_heldout_tokens, "heldout_added": added},
                             seconds=time.monotonic() - started, splits=(train_info, val.close()))
        write_json(tmp / "corpus.json", manifest)
    return Corpus.open(store, name, verify=False)


def write_documents(store: Store, name: str, documents: Iterator[np.ndarray], tokenizer: str, *, train_tokens: int,
                    heldout_tokens: int, record: dict) -> Corpus:
    """Corpus `name` from documents of token ids (each ending with EOS) rather than text: the first documents until
    `heldout_tokens` are held out, the next until `train_tokens` are trained on; `record` says where they came from
    (corpus.json's `generated`). Written like a prepared corpus: nothing is left behind if anything fails."""
    tok = load_tokenizer(store, tokenizer)
    vocab_size = max(len(tok), tok.backend_tokenizer.get_vocab_size(with_added_tokens=True))
    dtype = np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)
    started = time.monotonic()
    with store.staging("corpora", name) as tmp:
        train, val = ShardWriter(tmp / "train", dtype), ShardWriter(tmp / "val", dtype)
        for doc in documents:
            split = val if val.tokens < heldout_tokens else train
            split.add(np.asarray(doc, dtype=dtype), np.array([len(doc)], dtype=np.int64))
            if train.tokens >= train_tokens:
                break
        splits = (train.close(), val.close())
        held = splits[1]["tokens"] / max(1, splits[0]["tokens"] + splits[1]["tokens"])
        manifest = _manifest(name, tokenizer, tok, vocab_size, dtype, [], sources=([], []), counts={"replaced": 0, "empty": 0},
                             options={"text_field": None, "input_format": None, "val_fraction": round(held, 6),
                                      "min_heldout_tokens": heldout_tokens, "heldout_added": 0, "generated": record},
                             seconds=time.monotonic() - started, splits=splits)
        write_json(tmp / "corpus.json", manifest)
    return Corpus.open(store, name, verify=False)
