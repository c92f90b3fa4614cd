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

from renewlm.errors import CorruptError, RenewError
from renewlm.store import Store, read_json

SHARD_TOKENS = 1 << 28  # 512 MB of uint16 per shard file


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


def open_corpora(store: Store, names: list[str], problems: list[str]) -> dict[str, Corpus]:
    """The corpora that open; each that does not adds its sentence to `problems` (preflight reports all)."""
    out = {}
    for name in names:
        try:
            out[name] = Corpus.open(store, name)
        except RenewError as e:
            problems.append(str(e))
    return out


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


class ShardWriter:
    """Appends documents to shard files of at most SHARD_TOKENS tokens, hashing as it writes."""

    def __init__(self, folder: Path, dtype: np.dtype, shard_tokens: int = SHARD_TOKENS):
        self.folder, self.dtype, self.shard_tokens = folder, dtype, shard_tokens
        folder.mkdir(parents=True)
        self.shards: list[dict] = []
        self.documents = 0
        self.tokens = 0
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
        self.tokens += int(done_tokens)

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



def replace_documents(folder: Path, info: dict, dtype: np.dtype, new: dict[int, np.ndarray | None]) -> dict:
    """Rewrite the shards of a closed split so document g holds `new[g]` (None: drop it); shards
    without such a document are left as they are. Returns the split's new manifest entry."""
    split = Split(folder, info, dtype)
    shards, first = [], 0
    for k, shard in enumerate(info["shards"]):
        ends = split._ends[k]
        last = first + len(ends)
        mine = sorted(g for g in new if first <= g < last)
        if not mine:
            shards.append(shard)
            first = last
            continue
        starts = np.concatenate([[0], ends[:-1]])
        keep_ends, cursor = [], 0
        tmp_bin, tmp_idx = folder / f".{shard['file']}.new", folder / f".{shard['index']}.new"
        bin_hash = hashlib.sha256()
        with tmp_bin.open("wb") as out:
            def write(array) -> None:
                data = memoryview(np.ascontiguousarray(array, dtype=dtype)).cast("B")
                out.write(data)
                bin_hash.update(data)

            tokens = split._tokens[k]
            done = 0  # local documents already written
            for g in mine + [last]:
                local = g - first
                if local > done:  # untouched documents between changes, in one slice
                    write(tokens[starts[done] : ends[local - 1]])
                    keep_ends.append(ends[done:local] - starts[done] + cursor)
                    cursor += int(ends[local - 1] - starts[done])
                if g == last:
                    break
                if new[g] is not None:
                    write(new[g])
                    cursor += len(new[g])
                    keep_ends.append(np.array([cursor], dtype=np.int64))
                done = local + 1
        index = np.concatenate(keep_ends).astype(np.int64) if keep_ends else np.empty(0, np.int64)
        index.tofile(tmp_idx)
        tmp_bin.replace(folder / shard["file"])
        tmp_idx.replace(folder / shard["index"])
        shards.append({**shard, "tokens": cursor, "file_bytes": cursor * dtype.itemsize, "file_sha256": bin_hash.hexdigest(),
                       "index_bytes": index.nbytes, "index_sha256": hashlib.sha256(index.tobytes()).hexdigest()})
        first = last
    documents = info["documents"] - sum(1 for v in new.values() if v is None)
    return {"tokens": sum(s["tokens"] for s in shards), "documents": documents, "shards": shards}


def list_corpora(store: Store) -> list[dict]:
    return [read_json(store.path("corpora", n) / "corpus.json") for n in store.names("corpora") if (store.path("corpora", n) / "corpus.json").is_file()]
