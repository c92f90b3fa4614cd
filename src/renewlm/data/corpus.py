"""Corpora: token ids in memory-mapped shards, with a held-out split and a manifest.

Layout of `corpora/NAME/`:
    corpus.json            manifest: sources, tokenizer, dtype, counts, shard sizes and sha256
    train/00000.bin ...    token ids (uint16 or uint32), documents back to back, each ending with EOS
    train/00000.idx ...    int64 end offset of every document within its shard
    val/...                the held-out split, the same way
A split reads as one stream of tokens across its shards. Opening a corpus checks every shard's size
and sha256 against the manifest, so a truncated or altered shard is found before it is trained on.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np

from renewlm.errors import CorruptError
from renewlm.store import Store, read_json


class Split:
    """The train or val tokens of a corpus, as one array across shards."""

    def __init__(self, folder: Path, info: dict, dtype: np.dtype):
        self.folder = folder
        self.dtype = dtype
        self.num_tokens = int(info["tokens"])
        self.num_documents = int(info["documents"])
        self._shards = info["shards"]
        sizes = [s["tokens"] for s in self._shards]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @cached_property
    def _tokens(self) -> list[np.ndarray]:
        return [np.memmap(self.folder / s["file"], dtype=self.dtype, mode="r") if s["tokens"] else np.empty(0, self.dtype) for s in self._shards]

    @cached_property
    def _ends(self) -> list[np.ndarray]:
        return [np.fromfile(self.folder / s["index"], dtype=np.int64) for s in self._shards]

    @cached_property
    def _doc_starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([len(e) for e in self._ends])]).astype(np.int64)

    def read(self, start: int, length: int) -> np.ndarray:
        """Tokens [start, start + length) of the split."""
        if start < 0 or length < 0 or start + length > self.num_tokens:
            raise IndexError(f"tokens [{start}, {start + length}) outside [0, {self.num_tokens}) of {self.folder}")
        if len(self._shards) == 1:  # the common case, and the hot path of the training stream
            return self._tokens[0][start : start + length]
        if length == 0:
            return np.empty(0, self.dtype)
        shard = int(np.searchsorted(self._starts, start, side="right")) - 1
        local = start - int(self._starts[shard])
        first = self._tokens[shard][local : local + length]
        if len(first) == length:
            return first
        parts, need = [first], length - len(first)
        while need:
            shard += 1
            piece = self._tokens[shard][:need]
            parts.append(piece)
            need -= len(piece)
        return np.concatenate(parts)

    def document(self, i: int) -> np.ndarray:
        """Tokens of document i, its EOS included."""
        if not 0 <= i < self.num_documents:
            raise IndexError(f"document {i} outside [0, {self.num_documents}) of {self.folder}")
        shard = int(np.searchsorted(self._doc_starts, i, side="right")) - 1
        k = i - int(self._doc_starts[shard])
        ends = self._ends[shard]
        return np.asarray(self._tokens[shard][(ends[k - 1] if k else 0) : ends[k]])


class Corpus:
    def __init__(self, name: str, path: Path, manifest: dict):
        self.name = name
        self.path = path
        self.manifest = manifest
        self.dtype = np.dtype(manifest["dtype"])
        self.tokenizer_fingerprint = manifest["tokenizer"]["fingerprint"]
        self.eos_id = int(manifest["tokenizer"]["eos_id"])
        self.train = Split(path / "train", manifest["train"], self.dtype)
        self.val = Split(path / "val", manifest["val"], self.dtype)

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, train={self.train.num_tokens} tokens, val={self.val.num_tokens} tokens)"

    @classmethod
    def open(cls, store: Store, name: str, verify: bool = True) -> Corpus:
        path = store.require("corpora", name)
        manifest = read_json(path / "corpus.json")
        if verify:
            verify_shards(path, manifest)
        return cls(name, path, manifest)


def verify_shards(path: Path, manifest: dict) -> None:
    """Every shard file has the size and sha256 the manifest recorded (~1 s per GB)."""
    for split in ("train", "val"):
        for shard in manifest[split]["shards"]:
            for key in ("file", "index"):
                file = path / split / shard[key]
                expected = shard[f"{key}_bytes"], shard[f"{key}_sha256"]
                if not file.is_file() or file.stat().st_size != expected[0]:
                    size = file.stat().st_size if file.is_file() else "missing"
                    raise CorruptError(
                        f"corpus shard {file} is truncated or missing (size {size}, expected {expected[0]} bytes); "
                        f"prepare the corpus again with --overwrite"
                    )
                with file.open("rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                if digest != expected[1]:
                    raise CorruptError(
                        f"corpus shard {file} was altered (its sha256 differs from corpus.json); "
                        f"prepare the corpus again with --overwrite"
                    )


def list_corpora(store: Store) -> list[dict]:
    return [read_json(store.path("corpora", n) / "corpus.json") for n in store.names("corpora") if (store.path("corpora", n) / "corpus.json").is_file()]


def __getattr__(name: str):
    # `prepare` lives in prepare.py (which imports this module) and is re-exported here lazily, so
    # `from renewlm.data.corpus import Corpus, prepare, list_corpora` works without an import cycle.
    if name == "prepare":
        from renewlm.data.prepare import prepare

        return prepare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
