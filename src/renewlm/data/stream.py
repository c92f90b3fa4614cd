"""The training stream of a mixture: sample i is a pure function of (mixture, corpora, seed, i).

Sample i is a window of `seq_len + 1` tokens. Three steps take i to tokens:
1. Interleaving (Megatron's blended datasets, computed once): within each phase, sample k goes to
   the source furthest behind its weight, `argmax_s w_s·(k+1) − c_s`, so every prefix of the stream
   holds each source's share to within about one sequence. Only the source id of each sample is
   kept (one byte) plus every source's running count at each block of 512 samples.
2. Position in the source: the j-th sample drawn from a corpus is sequence `permute(j mod n)` of
   epoch `j div n`, a fresh seeded permutation per epoch (see shuffle.py), so a small corpus is
   reshuffled every time it runs out.
3. Tokens: sequence s of a corpus is tokens [s·L, s·L + L + 1) of its concatenated documents
   (documents are packed, each ends with EOS).
Nothing depends on the number of processes: rank r of w reads samples r, r + w, r + 2w, ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from renewlm.data.mixture import MixtureSpec
from renewlm.data.shuffle import derive_key, permute
from renewlm.errors import ConfigError

_BLOCK = 512


@dataclass(frozen=True)
class PlanRow:
    """What the run will read from one corpus in one phase."""

    phase: int
    corpus: str
    samples: int
    tokens: int
    share: float  # of the phase's samples
    epochs: float  # passes over the corpus made by the end of this phase (cumulative)


class MixtureStream:
    def __init__(
        self,
        spec: MixtureSpec,
        corpora: dict,
        *,
        seq_len: int,
        total_samples: int,
        seed: int,
        events: dict[str, float] | None = None,
    ):
        if seq_len < 1 or total_samples < 1:
            raise ConfigError(f"a stream needs seq_len ≥ 1 and total_samples ≥ 1 (got {seq_len}, {total_samples})")
        self.spec = spec
        self.seq_len = seq_len
        self.total_samples = total_samples
        self.seed = seed
        self.names = spec.corpus_names()
        missing = [n for n in self.names if n not in corpora]
        if missing:
            raise ConfigError(f"the mixture names corpora {missing} that were not given; prepare them first")
        self.corpora = [corpora[n] for n in self.names]
        _check_tokenizers(self.names, self.corpora)
        self.num_sequences = np.array([(c.train.num_tokens - 1) // seq_len for c in self.corpora], dtype=np.int64)
        for name, corpus, n in zip(self.names, self.corpora, self.num_sequences):
            if n < 1:
                raise ConfigError(
                    f"corpus {name!r} has {corpus.train.num_tokens} training tokens, fewer than one sequence "
                    f"of {seq_len + 1}; use a shorter sequence length or give it more data"
                )
        self._keys = [derive_key(seed, name) for name in self.names]

        ends = spec.phase_ends(events)
        self.phase_bounds = [0] + [round(e * total_samples) for e in ends]
        self.phase_bounds[-1] = total_samples
        self._sources = np.empty(total_samples, dtype=np.uint8)
        num = len(self.names)
        index = {name: i for i, name in enumerate(self.names)}
        for p, weights in enumerate(spec.phase_weights()):
            lo, hi = self.phase_bounds[p], self.phase_bounds[p + 1]
            w = np.zeros(num)
            for name, value in weights.items():
                w[index[name]] = value
            self._sources[lo:hi] = _interleave(w, hi - lo)
        # counts[b, s]: samples of source s before sample b·_BLOCK.
        blocks = -(-total_samples // _BLOCK)
        per_block = np.zeros((blocks, num), dtype=np.int64)
        padded = np.full(blocks * _BLOCK, 255, dtype=np.uint8)
        padded[:total_samples] = self._sources
        for s in range(num):
            per_block[:, s] = (padded.reshape(blocks, _BLOCK) == s).sum(axis=1)
        self._counts = np.zeros((blocks + 1, num), dtype=np.int64)
        np.cumsum(per_block, axis=0, out=self._counts[1:])
        self._check_epochs()

    def __len__(self) -> int:
        return self.total_samples

    def locate(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(source id, position j among that source's samples) for each sample index."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.total_samples):
            raise IndexError(f"sample index out of range [0, {self.total_samples})")
        src = self._sources[idx].astype(np.int64)
        if idx.size == 0:
            return src, src.copy()
        lo = int(idx.min()) // _BLOCK * _BLOCK
        hi = int(idx.max()) + 1
        if hi - lo <= 8 * _BLOCK + idx.size:
            # A batch is a contiguous range: count each source once over the span it covers.
            span = self._sources[lo:hi, None] == np.arange(len(self.names), dtype=np.uint8)
            before = np.zeros((hi - lo + 1, len(self.names)), dtype=np.int64)
            np.cumsum(span, axis=0, out=before[1:])
            return src, self._counts[lo // _BLOCK, src] + before[idx - lo, src]
        block = idx // _BLOCK
        j = self._counts[block, src].copy()
        for k, (i, b, s) in enumerate(zip(idx.tolist(), block.tolist(), src.tolist())):
            j[k] += np.count_nonzero(self._sources[b * _BLOCK : i] == s)
        return src, j

    def sequence_ids(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(source id, sequence number within the corpus) for each sample index."""
        src, j = self.locate(indices)
        n = self.num_sequences[src]
        epoch, pos = j // n, j % n
        keys = [derive_key(self._keys[s], e) for s, e in zip(src.tolist(), epoch.tolist())]
        return src, permute(pos, n, np.array(keys, dtype=np.uint64))

    def read(self, indices) -> np.ndarray:
        """Tokens of the given samples, shape (len(indices), seq_len + 1), int64."""
        src, seq = self.sequence_ids(indices)
        width = self.seq_len + 1
        out = np.empty((len(src), width), dtype=np.int64)
        for row, (s, q) in enumerate(zip(src.tolist(), seq.tolist())):
            out[row] = self.corpora[s].train.read(q * self.seq_len, width)
        return out

    def plan(self) -> list[PlanRow]:
        rows = []
        for p in range(len(self.phase_bounds) - 1):
            lo, hi = self.phase_bounds[p], self.phase_bounds[p + 1]
            before = self.counts_before(lo)
            after = self.counts_before(hi)
            for s, name in enumerate(self.names):
                samples = int(after[s] - before[s])
                if samples == 0:
                    continue
                rows.append(
                    PlanRow(
                        phase=p + 1,
                        corpus=name,
                        samples=samples,
                        tokens=samples * self.seq_len,
                        share=samples / max(1, hi - lo),
                        epochs=float(after[s] / self.num_sequences[s]),
                    )
                )
        return rows

    def counts_before(self, i: int) -> np.ndarray:
        """Samples drawn from each source among samples [0, i)."""
        b = i // _BLOCK
        counts = self._counts[min(b, len(self._counts) - 1)].copy()
        tail = self._sources[b * _BLOCK : i]
        counts += np.bincount(tail, minlength=len(self.names))[: len(self.names)]
        return counts

    def epochs(self) -> dict[str, float]:
        """Passes over each corpus the whole stream makes."""
        total = self.counts_before(self.total_samples)
        return {name: float(total[s] / self.num_sequences[s]) for s, name in enumerate(self.names)}

    def _check_epochs(self) -> None:
        for name, used in self.epochs().items():
            limit = self.spec.max_epochs.get(name)
            if limit is not None and used > limit:
                raise ConfigError(
                    f"the run would read corpus {name!r} {used:.2f} times, more than its max_epochs {limit:g}; "
                    f"lower its weight, shorten the run, add data or raise max_epochs"
                )


def rank_indices(start: int, count: int, rank: int, world: int) -> np.ndarray:
    """The samples of [start, start + count) that rank `rank` of `world` reads: start + rank + k·world."""
    return np.arange(start + rank, start + count, world, dtype=np.int64)


def _interleave(weights: np.ndarray, n: int) -> np.ndarray:
    """Greedy interleaving: sample k goes to argmax_s w_s·(k+1) − c_s (first source on ties)."""
    active = [s for s in range(len(weights)) if weights[s] > 0]
    if len(active) == 1:
        return np.full(n, active[0], dtype=np.uint8)
    w = [float(weights[s]) for s in active]
    counts = [0] * len(active)
    chosen = bytearray(n)
    pairs = list(enumerate(w))
    for k in range(n):
        k1 = k + 1
        best, best_deficit = 0, w[0] * k1 - counts[0]
        for s, ws in pairs[1:]:
            d = ws * k1 - counts[s]
            if d > best_deficit:
                best, best_deficit = s, d
        counts[best] += 1
        chosen[k] = best
    return np.asarray(active, dtype=np.uint8)[np.frombuffer(bytes(chosen), dtype=np.uint8)]


def _check_tokenizers(names: list[str], corpora: list) -> None:
    prints = {c.tokenizer_fingerprint for c in corpora}
    if len(prints) > 1:
        detail = ", ".join(f"{n}: {c.tokenizer_fingerprint[:12]}" for n, c in zip(names, corpora))
        raise ConfigError(
            f"the mixture's corpora were tokenized with different tokenizers ({detail}); "
            f"prepare them all with the same --tokenizer"
        )
