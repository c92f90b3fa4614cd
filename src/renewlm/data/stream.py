"""The training stream of a mixture: sample i is a pure function of (mixture, corpora, seed, i).

Sample i is a window of `seq_len + 1` tokens. Three steps take i to tokens:
1. Interleaving (Megatron's greedy blending, made periodic): within each phase, sample k goes to the
   source furthest behind its share, `argmax_s a_s·(k+1) − P·c_s` in integers, where the phase's
   shares are a_s / P exactly. After P samples every deficit is back to 0, so the order repeats with
   period P: one period is computed once (P ≤ 65,536), and sample k of a phase is position k mod P
   of it, its rank among its source's samples `(k div P)·a_s + rank[k mod P]`. Planning costs the
   same for 1e3 or 1e12 samples, and every prefix holds each source's share to within one sequence.
   Shares with no period that short are rounded to multiples of 1/65,536 (largest remainders).
2. Position in the source: the j-th sample drawn from a corpus is sequence `permute(j mod n)` of
   epoch `j div n`, a fresh seeded permutation per epoch (see shuffle.py), so a small corpus is
   reshuffled every time it runs out.
3. Tokens: sequence s of a corpus is tokens [s·L, s·L + L + 1) of its concatenated documents
   (documents are packed, each ends with EOS).
Nothing depends on the number of processes: rank r of w reads samples r, r + w, r + 2w, ...
"""

from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from renewlm.data.mixture import MixtureSpec
from renewlm.data.shuffle import derive_key, permute
from renewlm.errors import ConfigError

MAX_PERIOD = 1 << 16
MAX_SOURCES = 255  # source ids are one byte
# Sample and token counters are int64; leave headroom for sums of counts.
MAX_TOKENS = 1 << 62


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
        if total_samples * (seq_len + 1) > MAX_TOKENS:
            raise ConfigError(
                f"a stream of {total_samples:,} samples of {seq_len} tokens ({total_samples * seq_len:.3g} tokens) is "
                f"beyond what 64-bit counters hold (about {MAX_TOKENS:.1g} tokens); lower the number of samples or steps"
            )
        self.spec = spec
        self.seq_len = seq_len
        self.total_samples = total_samples
        self.seed = seed
        self.names = spec.corpus_names()
        if len(self.names) > MAX_SOURCES:
            raise ConfigError(
                f"the mixture names {len(self.names)} corpora, more than the {MAX_SOURCES} a stream can interleave; "
                f"merge some of them with `renewlm prepare` (it takes several inputs)"
            )
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
        index = {name: i for i, name in enumerate(self.names)}
        # Per phase: the global source id of each of the phase's sources, and its period.
        self._phases: list[tuple[np.ndarray, _Cycle]] = []
        self._before = []  # samples of each source drawn in earlier phases
        drawn = np.zeros(len(self.names), dtype=np.int64)
        for p, shares in enumerate(spec.phase_fractions()):
            ids = np.array([index[name] for name in shares], dtype=np.int64)
            cycle = _cycle(tuple(_counts_per_period(list(shares.values()))))
            self._phases.append((ids, cycle))
            self._before.append(drawn.copy())
            drawn[ids] += cycle.counts(self.phase_bounds[p + 1] - self.phase_bounds[p])
        self._bounds = np.array(self.phase_bounds, dtype=np.int64)
        self._check_epochs()

    def __len__(self) -> int:
        return self.total_samples

    def locate(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(source id, position j among that source's samples) for each sample index."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.total_samples):
            raise IndexError(f"sample index out of range [0, {self.total_samples})")
        src = np.empty(idx.size, dtype=np.int64)
        j = np.empty(idx.size, dtype=np.int64)
        phase = np.searchsorted(self._bounds, idx, side="right") - 1
        for p, (ids, cycle) in enumerate(self._phases):
            sel = phase == p
            if not sel.any():
                continue
            laps, pos = np.divmod(idx[sel] - self._bounds[p], cycle.period)
            local = cycle.order[pos].astype(np.int64)
            src[sel] = ids[local]
            j[sel] = self._before[p][ids[local]] + laps * cycle.per_period[local] + cycle.rank[pos]
        return src, j

    def sequence_ids(self, indices) -> tuple[np.ndarray, np.ndarray]:
        """(source id, sequence number within the corpus) for each sample index."""
        src, j = self.locate(indices)
        n = self.num_sequences[src]
        epoch, pos = j // n, j % n
        keys = [derive_key(self._keys[s], e) for s, e in zip(src.tolist(), epoch.tolist())]
        return src, permute(pos, n, np.array(keys, dtype=np.uint64))

    def read(self, indices) -> np.ndarray:
        """Tokens of the given samples, shape (len(indices), seq_len + 1), in the corpora's own dtype
        (uint16 for vocabularies up to 65,536): a quarter of int64's bytes to copy to the device."""
        src, seq = self.sequence_ids(indices)
        width = self.seq_len + 1
        out = np.empty((len(src), width), dtype=np.result_type(*(c.train.dtype for c in self.corpora)))
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
        p = max(0, int(np.searchsorted(self._bounds, i, side="right")) - 1)
        p = min(p, len(self._phases) - 1)
        ids, cycle = self._phases[p]
        counts = self._before[p].copy()
        counts[ids] += cycle.counts(i - self.phase_bounds[p])
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


class _Cycle:
    """One period of a phase's interleaving: which source each position goes to, and its rank there."""

    def __init__(self, order: np.ndarray, per_period: np.ndarray):
        self.order = order  # local source id of each position, uint8
        self.per_period = per_period  # samples of each source per period, int64
        self.period = len(order)
        self.rank = np.empty(self.period, dtype=np.int64)  # earlier positions with the same source
        for s in range(len(per_period)):
            mine = order == s
            self.rank[mine] = np.arange(int(mine.sum()))

    def counts(self, n: int) -> np.ndarray:
        """Samples of each source among the first n of the phase."""
        laps, rest = divmod(n, self.period)
        tail = np.bincount(self.order[:rest], minlength=len(self.per_period))
        return laps * self.per_period + tail


def _counts_per_period(shares: list[Fraction]) -> list[int]:
    """Integers a_s with a_s / sum(a) equal to the shares, or within 1/MAX_PERIOD of them."""
    period = math.lcm(*(w.denominator for w in shares))
    if period <= MAX_PERIOD:
        return [int(w * period) for w in shares]
    # Largest remainders (ties to the first source); a positive share never rounds to zero, so no
    # corpus silently drops out: the one it would lose is taken from the largest.
    exact = [w * MAX_PERIOD for w in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(shares)), key=lambda s: (counts[s] - exact[s], s))
    for s in by_remainder[: MAX_PERIOD - sum(counts)]:
        counts[s] += 1
    for s in range(len(counts)):
        if counts[s] == 0:
            counts[s] = 1
            counts[counts.index(max(counts))] -= 1
    return counts


@lru_cache(maxsize=64)
def _cycle(counts: tuple[int, ...]) -> _Cycle:
    """The greedy order over one period: position k goes to argmax_s a_s·(k+1) − P·c_s (first on ties).

    Every deficit stays above −1 (the chosen source had the largest, and they sum to a positive
    number), so after P samples each c_s is a_s exactly and the order repeats."""
    period, num = sum(counts), len(counts)
    if num == 1:
        order = np.zeros(period, dtype=np.uint8)
    else:
        a = counts
        taken = [0] * num
        chosen = bytearray(period)
        for k in range(period):
            k1 = k + 1
            best, best_deficit = 0, a[0] * k1 - period * taken[0]
            for s in range(1, num):
                d = a[s] * k1 - period * taken[s]
                if d > best_deficit:
                    best, best_deficit = s, d
            taken[best] += 1
            chosen[k] = best
        order = np.frombuffer(bytes(chosen), dtype=np.uint8)
        assert taken == list(counts)  # the period closes exactly (see the docstring)
    return _Cycle(order, np.asarray(counts, dtype=np.int64))


def _check_tokenizers(names: list[str], corpora: list) -> None:
    prints = {c.tokenizer_fingerprint for c in corpora}
    if len(prints) > 1:
        detail = ", ".join(f"{n}: {c.tokenizer_fingerprint[:12]}" for n, c in zip(names, corpora))
        raise ConfigError(
            f"the mixture's corpora were tokenized with different tokenizers ({detail}); "
            f"prepare them all with the same --tokenizer"
        )
