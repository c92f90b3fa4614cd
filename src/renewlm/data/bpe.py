"""Continued BPE training: the merge loop, starting from a trained vocabulary and its merges.

The words of the new text (each as its symbols after the old merges, with its frequency) lie back to
back in one int32 array, a -1 between words. Each step takes the most frequent adjacent pair (a lazy
max-heap of counts), finds its occurrences with one vectorised comparison over the array, and updates
the counts of only the pairs that touch a merged position: the pairs there before the merge are
subtracted, those there after it added. Symbols below 0 never merge (-1 ends a word; -2 marks a
character the vocabulary cannot hold, or a special token).

A pass over the array costs O(symbols) in numpy, about 1 ms per million symbols; a few MB of text
are some hundred thousand distinct words, so a thousand merges take seconds
(benchmarks/tokenizer_extend.py measures it).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

END = -1  # between words
BLOCKED = -2  # a symbol no merge may use
_SHIFT = np.int64(32)


@dataclass
class Merges:
    """What the loop learned: merges as (left id, right id) in order, and the new tokens by id."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    tokens: dict[int, str] = field(default_factory=dict)


def pack(words: list[list[int]], freqs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The words back to back with END after each, and each position's weight (its word's frequency).
    Words of one symbol hold no pair and are left out."""
    kept = [(w, f) for w, f in zip(words, freqs) if len(w) > 1]
    if not kept:
        return np.empty(0, np.int32), np.empty(0, np.int64)
    lengths = np.fromiter((len(w) + 1 for w, _ in kept), np.int64, len(kept))
    flat = np.fromiter((s for w, _ in kept for s in (*w, END)), np.int32, int(lengths.sum()))
    weight = np.repeat(np.fromiter((f for _, f in kept), np.int64, len(kept)), lengths)
    return flat, weight


def continue_merges(
    flat: np.ndarray,
    weight: np.ndarray,
    vocab: dict[str, int],
    strings: dict[int, str],
    *,
    add: int,
    first_id: int,
    reserved: frozenset[str] = frozenset(),
    min_count: int = 2,
) -> Merges:
    """Greedily learn merges until `add` new tokens exist or no pair occurs `min_count` times.

    `vocab` (string → id) and `strings` (id → string) cover every symbol id in `flat`. A merge whose
    string is already a token reuses that id (BPE allows two merges to one token); one whose string is
    in `reserved` (an added token's content, which the model vocabulary must not shadow) is skipped.
    New ids count up from `first_id`.
    """
    out = Merges()
    flat = flat.copy()  # merged in place below
    counts = _pair_counts(flat, weight)
    heap = [(-c, k) for k, c in counts.items()]
    heapq.heapify(heap)
    skipped: set[int] = set()
    while len(out.tokens) < add and heap:
        negative, key = heapq.heappop(heap)
        if counts.get(key, 0) != -negative or key in skipped:
            continue  # a stale entry: the pair's count changed since it was pushed
        if -negative < min_count:
            break
        a, b = int(key >> _SHIFT), int(key & 0xFFFFFFFF)
        merged = strings[a] + strings[b]
        if merged in reserved:
            skipped.add(key)
            continue
        new = vocab.get(merged)
        if new is None:
            new = first_id + len(out.tokens)
            vocab[merged], strings[new] = new, merged
            out.tokens[new] = merged
        out.pairs.append((a, b))
        flat, weight, changed = _apply(flat, weight, a, b, new, counts)
        for k in changed:
            if counts[k] > 0:
                heapq.heappush(heap, (-counts[k], k))
    return out


def _keys(flat: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pair keys (left << 32 | right) at `starts`, and a mask of those that may merge."""
    left, right = flat[starts].astype(np.int64), flat[starts + 1].astype(np.int64)
    return (left << _SHIFT) | right, (left >= 0) & (right >= 0)


def _pair_counts(flat: np.ndarray, weight: np.ndarray) -> dict[int, int]:
    if len(flat) < 2:
        return {}
    keys, ok = _keys(flat, np.arange(len(flat) - 1))
    unique, inverse = np.unique(keys[ok], return_inverse=True)
    sums = np.bincount(inverse, weights=weight[:-1][ok], minlength=len(unique))
    return dict(zip(unique.tolist(), sums.astype(np.int64).tolist()))


def _apply(flat, weight, a: int, b: int, new: int, counts: dict[int, int]):
    """Merge every occurrence of (a, b) into `new`, left to right, updating `counts` in place; the
    array, its weights and the pair keys whose counts changed."""
    hits = np.flatnonzero((flat[:-1] == a) & (flat[1:] == b))
    if a == b and len(hits) > 1:  # in a run "a a a" only every other start merges, as BPE reads left to right
        run_start = np.concatenate([[True], np.diff(hits) != 1])
        first = hits[run_start][np.cumsum(run_start) - 1]
        hits = hits[(hits - first) % 2 == 0]
    last = len(flat) - 2  # the last pair start
    before = np.unique(np.concatenate([hits - 1, hits, hits + 1]))
    before = before[(before >= 0) & (before <= last)]
    old_keys, old_ok = _keys(flat, before)
    old_w = weight[before]
    flat[hits] = new
    keep = np.ones(len(flat), bool)
    keep[hits + 1] = False
    flat, weight = flat[keep], weight[keep]
    moved = hits - np.arange(len(hits))  # each earlier merge removed one position before this one
    after = np.unique(np.concatenate([moved - 1, moved]))
    after = after[(after >= 0) & (after <= len(flat) - 2)]
    new_keys, new_ok = _keys(flat, after)
    keys = np.concatenate([old_keys[old_ok], new_keys[new_ok]])
    deltas = np.concatenate([-old_w[old_ok], weight[after][new_ok]])
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=deltas, minlength=len(unique)).astype(np.int64)
    changed = []
    for k, d in zip(unique.tolist(), sums.tolist()):
        if d:
            counts[k] = counts.get(k, 0) + d
            changed.append(k)
    return flat, weight, changed
