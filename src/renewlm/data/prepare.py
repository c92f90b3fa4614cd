"""`prepare`: raw files to a corpus, tokenized in parallel, streamed, written atomically.

The main process reads the input as work units (sources.py) and keeps at most two per worker in
flight, so memory stays flat whatever the input size. Workers parse, tokenize, append EOS and split
each document into train or held-out by a hash of its text. Results are written in input order, so
the corpus is the same for any number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
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
from renewlm.data.corpus import Corpus
from renewlm.data.sources import Unit, expand, unit_texts, units
from renewlm.data.tokenizer import fingerprint, load_tokenizer
from renewlm.errors import ConfigError, InputError
from renewlm.store import Store, write_json

SHARD_TOKENS = 1 << 28  # 512 MB of uint16 per shard file
# fork starts workers in milliseconds and does not re-run the caller's __main__ (spawn would, so a
# script calling prepare() without an `if __name__ == "__main__"` guard would fail). Workers use no
# threads of their parent's: the tokenizer is built anew in each, with Rust parallelism off.
_START_METHOD = "fork" if sys.platform == "linux" else "spawn"


@dataclass
class Piece:
    """A worker's output for one unit."""

    train: np.ndarray
    train_lengths: np.ndarray
    val: np.ndarray
    val_lengths: np.ndarray
    replaced: int
    empty: int


def is_heldout(text: str, val_fraction: float) -> bool:
    """The document's split, by a hash of its content: the same text always lands in the same split."""
    return _heldout(_SURROGATE.sub("\ufffd", text).encode("utf-8"), val_fraction)


def _heldout(data: bytes, val_fraction: float) -> bool:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") < val_fraction * 2**64


# JSON may escape a lone UTF-16 surrogate ("\ud800"); it has no UTF-8 form, so it is replaced and
# counted like invalid UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
_state: dict = {}


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

    _state.update(tokenizer=Tokenizer.from_str(tokenizer_json), eos=eos, text_field=text_field,
                  val_fraction=val_fraction, dtype=np.dtype(dtype))


def _tokenize(unit: Unit) -> Piece:
    s = _state
    counter = [0]
    texts = unit_texts(unit, s["text_field"], counter)
    kept, heldout = [], []
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
        heldout.append(_heldout(data, s["val_fraction"]))
    encodings = s["tokenizer"].encode_batch_fast(kept, add_special_tokens=False)
    eos = [s["eos"]]
    out = []
    for want in (False, True):
        ids = [e.ids for e, h in zip(encodings, heldout, strict=True) if h == want]
        lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(x + eos for x in ids), dtype=s["dtype"], count=int(lengths.sum()))
        out += [flat, lengths]
    return Piece(*out, replaced=counter[0], empty=len(texts) - len(kept))


class ShardWriter:
    """Appends documents to shard files of at most SHARD_TOKENS tokens, hashing as it writes."""

    def __init__(self, folder: Path, dtype: np.dtype, shard_tokens: int = SHARD_TOKENS):
        self.folder, self.dtype, self.shard_tokens = folder, dtype, shard_tokens
        folder.mkdir(parents=True)
        self.shards: list[dict] = []
        self.documents = 0
        self._open = None

    def _new_shard(self) -> None:
        self._finish_shard()
        stem = f"{len(self.shards):05d}"
        self._open = {
            "file": f"{stem}.bin", "index": f"{stem}.idx", "tokens": 0,
            "bin": (self.folder / f"{stem}.bin").open("wb"), "idx": (self.folder / f"{stem}.idx").open("wb"),
            "bin_hash": hashlib.sha256(), "idx_hash": hashlib.sha256(), "bin_bytes": 0, "idx_bytes": 0,
        }

    def _write(self, kind: str, array: np.ndarray) -> None:
        data = memoryview(np.ascontiguousarray(array)).cast("B")
        self._open[kind].write(data)
        self._open[f"{kind}_hash"].update(data)
        self._open[f"{kind}_bytes"] += len(data)

    def add(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        ends = np.cumsum(lengths)
        done_docs, done_tokens = 0, 0
        while done_docs < len(lengths):
            if self._open is None or self._open["tokens"] >= self.shard_tokens:
                self._new_shard()
            room = self.shard_tokens - self._open["tokens"]
            # As many whole documents as fit (at least one: a longer document gets a shard of its own).
            fit = int(np.searchsorted(ends[done_docs:] - done_tokens, room, side="right"))
            if fit == 0 and self._open["tokens"]:
                self._new_shard()
                continue
            take = max(1, fit)
            stop_tokens = int(ends[done_docs + take - 1])
            self._write("idx", ends[done_docs : done_docs + take] - done_tokens + self._open["tokens"])
            self._write("bin", tokens[done_tokens:stop_tokens])
            self._open["tokens"] += stop_tokens - done_tokens
            done_docs += take
            done_tokens = stop_tokens
        self.documents += len(lengths)

    def _finish_shard(self) -> None:
        if self._open is None:
            return
        o = self._open
        o["bin"].close()
        o["idx"].close()
        self.shards.append({
            "file": o["file"], "index": o["index"], "tokens": o["tokens"],
            "file_bytes": o["bin_bytes"], "file_sha256": o["bin_hash"].hexdigest(),
            "index_bytes": o["idx_bytes"], "index_sha256": o["idx_hash"].hexdigest(),
        })
        self._open = None

    def close(self) -> dict:
        if self._open is None and not self.shards:
            self._new_shard()  # an empty split still has one (empty) shard, so every corpus looks alike
        self._finish_shard()
        return {"tokens": sum(s["tokens"] for s in self.shards), "documents": self.documents, "shards": self.shards}


def _source_record(path: Path) -> dict:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    size = 0
    for f in files:
        with f.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
        size += f.stat().st_size
    return {"path": str(path.absolute()), "bytes": size, "sha256": digest.hexdigest()}


def prepare(
    store: Store,
    name: str,
    inputs: list[str | Path],
    tokenizer: str | Path,
    *,
    text_field: str = "text",
    val_fraction: float = 0.005,
    workers: int | None = None,
    overwrite: bool = False,
    split_blank_lines: bool = False,
    progress: Callable[[dict], None] | None = None,
) -> Corpus:
    """Tokenize `inputs` into corpus `name`; nothing is left behind if anything fails."""
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"--val-fraction {val_fraction} is outside [0, 1); use e.g. 0.005")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    paths, skipped = expand(inputs)
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

        def take(piece: Piece) -> None:
            train.add(piece.train, piece.train_lengths)
            val.add(piece.val, piece.val_lengths)
            counts["replaced"] += piece.replaced
            counts["empty"] += piece.empty
            if progress:
                progress({"documents": train.documents + val.documents, "seconds": time.monotonic() - started,
                          "tokens": int(piece.train_lengths.sum() + piece.val_lengths.sum())})

        init = (tok.backend_tokenizer.to_str(), tok.eos_token_id, text_field, val_fraction, dtype.str)
        work = (unit for path in paths for unit in units(path, text_field, split_blank_lines))
        if workers == 1:  # in this process, its signal handlers untouched
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one worker: one core
            _load_state(*init)
            for unit in work:
                take(_tokenize(unit))
        else:
            with _pool(workers, init) as pool:
                pending: deque = deque()
                for unit in work:
                    pending.append(pool.apply_async(_tokenize, (unit,)))
                    if len(pending) >= 2 * workers:
                        take(pending.popleft().get())
                while pending:
                    take(pending.popleft().get())
        train_info, val_info = train.close(), val.close()
        if train_info["documents"] + val_info["documents"] == 0:
            raise InputError(f"no documents with text in {', '.join(map(str, inputs))}; check --text-field and the files")
        manifest = {
            "name": name,
            "renewlm_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "tokenizer": {
                "ref": str(tokenizer), "fingerprint": fingerprint(tok), "vocab_size": vocab_size,
                "eos_id": tok.eos_token_id, "name_or_path": str(tok.name_or_path),
            },
            "dtype": dtype.name,
            "text_field": text_field,
            "val_fraction": val_fraction,
            "sources": [_source_record(p) for p in paths],
            "skipped_files": skipped,
            "replaced_characters": counts["replaced"],
            "empty_documents": counts["empty"],
            "seconds": round(time.monotonic() - started, 3),
            "train": train_info,
            "val": val_info,
        }
        write_json(tmp / "corpus.json", manifest)
    return Corpus.open(store, name, verify=False)
