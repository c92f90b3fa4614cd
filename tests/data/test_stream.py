"""The mixture stream, on in-memory corpora whose tokens say where they came from."""

from types import SimpleNamespace

import numpy as np
import pytest

from renewlm.data.mixture import single, validate_mixture
from renewlm.data.stream import MixtureStream, rank_indices
from renewlm.errors import ConfigError

L = 8


class CountingSplit:
    """A corpus split whose token at position p is `source * 1e6 + p`, computed on read, so a test
    can have a corpus of 10^12 tokens."""

    dtype = np.dtype(np.int64)  # the stream reads in its corpora's dtype

    def __init__(self, source, num_tokens):
        self.source, self.num_tokens = source, num_tokens

    def read(self, start, length):
        if start < 0 or start + length > self.num_tokens:
            raise IndexError(start)
        return self.source * 1_000_000 + np.arange(start, start + length, dtype=np.int64)


def fake_corpus(source: int, num_tokens: int, fingerprint: str = "same"):
    # Token value = source * 1e6 + position: every read says which corpus and where.
    return SimpleNamespace(train=CountingSplit(source, num_tokens), tokenizer_fingerprint=fingerprint)


def corpora(**sizes):
    return {name: fake_corpus(i, n) for i, (name, n) in enumerate(sizes.items())}


def stream(weights, sizes, total=200, seed=0, **kw):
    return MixtureStream(single(weights), corpora(**sizes), seq_len=L, total_samples=total, seed=seed, **kw)


def test_prefix_proportions_within_one_sequence_for_every_prefix():
    weights = {"a": 0.5, "b": 0.3, "c": 0.2}
    s = stream(weights, dict(a=100_000, b=100_000, c=100_000), total=10_000)
    src, _ = s.locate(np.arange(10_000))
    k = np.arange(1, 10_001)
    for i, w in enumerate(weights.values()):
        counts = np.cumsum(src == i)
        assert np.abs(counts - w * k).max() <= 1.0
    assert np.bincount(src).tolist() == [5000, 3000, 2000]


def test_samples_are_aligned_windows_of_the_corpus():
    s = stream({"a": 1}, dict(a=1001), total=50)
    rows = s.read(np.arange(50))
    assert rows.shape == (50, L + 1)
    starts = rows[:, 0]
    assert np.all(starts % L == 0)
    assert np.array_equal(rows, starts[:, None] + np.arange(L + 1))
    # 1001 tokens hold (1001 - 1) // 8 = 125 sequences; 50 samples read 50 distinct ones.
    assert len(set(starts.tolist())) == 50


def test_same_seed_same_stream_other_seed_other_order():
    sizes = dict(a=5000, b=3000)
    one = stream({"a": 0.6, "b": 0.4}, sizes, seed=1).read(np.arange(200))
    again = stream({"a": 0.6, "b": 0.4}, sizes, seed=1).read(np.arange(200))
    other = stream({"a": 0.6, "b": 0.4}, sizes, seed=2).read(np.arange(200))
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)
    # Another seed reorders the same sources: the interleaving is the same, the sequences differ.
    assert np.array_equal(one[:, 0] // 1_000_000, other[:, 0] // 1_000_000)


def test_union_of_ranks_equals_the_one_process_stream():
    s = stream({"a": 0.5, "b": 0.3, "c": 0.2}, dict(a=3000, b=2000, c=1000), total=300)
    whole = s.read(np.arange(300))
    for world in (1, 2, 3):
        seen = np.empty_like(whole)
        for rank in range(world):
            idx = rank_indices(0, 300, rank, world)
            seen[idx] = s.read(idx)
        assert np.array_equal(seen, whole)
    assert rank_indices(96, 32, 1, 4).tolist() == list(range(97, 128, 4))


def test_resuming_from_a_counter_yields_the_next_samples():
    def make():
        return stream({"a": 0.7, "b": 0.3}, dict(a=400, b=200), total=500, seed=7)

    full = make().read(np.arange(500))
    resumed = make()  # a new process: nothing carried over but the counter 123
    assert np.array_equal(resumed.read(np.arange(123, 500)), full[123:])


def test_small_corpus_runs_several_epochs_each_a_full_reshuffled_pass():
    # b has (41 - 1) // 8 = 5 sequences and gets half of 40 samples: 4 epochs.
    s = stream({"a": 0.5, "b": 0.5}, dict(a=10_000, b=41), total=40, seed=3)
    src, seq = s.sequence_ids(np.arange(40))
    b_seq = seq[src == 1]
    assert len(b_seq) == 20
    epochs = b_seq.reshape(4, 5)
    for e in epochs:
        assert sorted(e.tolist()) == [0, 1, 2, 3, 4]  # each epoch reads every sequence once
    assert len({tuple(e) for e in epochs.tolist()}) > 1  # and reshuffles between epochs
    assert s.epochs()["b"] == pytest.approx(4.0)
    plan = {r.corpus: r for r in s.plan()}
    assert plan["b"].epochs == pytest.approx(4.0) and plan["b"].samples == 20 and plan["b"].share == 0.5


def test_max_epochs_fails_before_training():
    mix = validate_mixture({"phases": [{"corpora": {"a": 0.5, "b": 0.5}}], "max_epochs": {"b": 2}})
    with pytest.raises(ConfigError, match="'b' 4.00 times, more than its max_epochs 2"):
        MixtureStream(mix, corpora(a=10_000, b=41), seq_len=L, total_samples=40, seed=0)


def test_phases_switch_weights_and_sources_continue_across_phases():
    mix = validate_mixture(
        {"phases": [{"corpora": {"a": 1}, "end": 0.25}, {"corpora": {"a": 1, "b": 1}, "end": 1.0}]}
    )
    s = MixtureStream(mix, corpora(a=10_000, b=10_000), seq_len=L, total_samples=100, seed=0)
    src, j = s.locate(np.arange(100))
    assert set(src[:25].tolist()) == {0}
    assert np.bincount(src[25:]).tolist() == [38, 37] or np.bincount(src[25:]).tolist() == [37, 38]
    # Corpus a's sample counter continues: no sequence of a is read twice.
    a_positions = j[src == 0]
    assert a_positions.tolist() == list(range(len(a_positions)))
    plan = s.plan()
    assert [(r.phase, r.corpus, r.samples) for r in plan][:1] == [(1, "a", 25)]


def test_replay_shares_every_phase():
    mix = single({"new": 1.0}, replay={"old": 1.0}, replay_fraction=0.25)
    s = MixtureStream(mix, corpora(new=100_000, old=100_000), seq_len=L, total_samples=1000, seed=0)
    src, _ = s.locate(np.arange(1000))
    assert np.bincount(src).tolist() == [750, 250]
    # every batch of 64 holds a quarter of old data, give or take one sequence
    for b in range(0, 960, 64):
        assert abs(np.count_nonzero(src[b : b + 64] == 1) - 16) <= 1


def test_bad_stream_inputs_fail_clearly():
    with pytest.raises(ConfigError, match="different tokenizers"):
        MixtureStream(
            single({"a": 1, "b": 1}),
            {"a": fake_corpus(0, 100, "x"), "b": fake_corpus(1, 100, "y")},
            seq_len=L,
            total_samples=10,
            seed=0,
        )
    with pytest.raises(ConfigError, match="fewer than one sequence"):
        stream({"a": 1}, dict(a=L), total=10)
    with pytest.raises(ConfigError, match="were not given"):
        MixtureStream(single({"a": 1, "zzz": 1}), corpora(a=100), seq_len=L, total_samples=10, seed=0)
    s = stream({"a": 1}, dict(a=100), total=10)
    with pytest.raises(IndexError):
        s.read([10])


def test_locate_matches_a_plain_count_for_contiguous_and_scattered_indices():
    s = stream({"a": 0.5, "b": 0.3, "c": 0.2}, dict(a=100_000, b=100_000, c=100_000), total=20_000)
    src, _ = s.locate(np.arange(20_000))
    expected, counts = np.zeros(len(src), dtype=int), np.zeros(3, dtype=int)
    for i, x in enumerate(src):  # the j-th sample of its source, counted one by one
        expected[i], counts[x] = counts[x], counts[x] + 1
    for start in (0, 5, 511, 512, 7000, 19_900):
        idx = np.arange(start, min(20_000, start + 100), 3)
        assert np.array_equal(s.locate(idx)[1], expected[idx])
    scattered = np.random.default_rng(0).integers(0, 20_000, 50)
    assert np.array_equal(s.locate(scattered)[1], expected[scattered])


def test_random_shares_keep_every_prefix_within_one_sequence_across_periods():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(2, 9))
        weights = {f"c{i}": float(rng.integers(1, 1000)) / 100 for i in range(n)}
        s = stream(weights, {name: 10**9 for name in weights}, total=50_000)
        src, j = s.locate(np.arange(50_000))
        shares = np.array(list(s.spec.phase_weights()[0].values()))
        k = np.arange(1, 50_001)
        for i in range(n):
            assert np.abs(np.cumsum(src == i) - shares[i] * k).max() < 1.0, weights
            assert j[src == i].tolist() == list(range(np.count_nonzero(src == i)))  # j counts, across periods


def test_planning_costs_nothing_for_a_trillion_samples():
    s = stream({"a": 0.5, "b": 0.3, "c": 0.2}, dict(a=10**12, b=10**12, c=10**12), total=10**12)
    assert s.counts_before(10**12).tolist() == [5 * 10**11, 3 * 10**11, 2 * 10**11]
    last = np.arange(10**12 - 10, 10**12)
    src, j = s.locate(last)
    counts = s.counts_before(10**12 - 10)
    for x, pos in zip(src.tolist(), j.tolist()):  # the tail continues the counts exactly
        assert pos == counts[x]
        counts[x] += 1
    assert s.read(last).shape == (10, L + 1)


def test_shares_without_a_short_period_are_rounded_and_none_is_dropped():
    s = stream({"a": 1, "b": 1e-9, "c": 0.123456789}, dict(a=10**9, b=10**9, c=10**9), total=10**9)
    counts = s.counts_before(10**9)
    assert counts.sum() == 10**9 and counts[1] > 0
    exact = np.array(list(s.spec.phase_weights()[0].values()))
    # Rounded to multiples of 1/65,536: each share moves by less than two such steps (one for the
    # rounding, one when the largest gives up a step so a tiny share is not rounded to nothing).
    assert np.all(np.abs(counts / 10**9 - exact) < 2 / 65_536)


def test_streams_beyond_64_bit_counters_are_refused():
    with pytest.raises(ConfigError, match="beyond what 64-bit counters hold"):
        stream({"a": 1}, dict(a=10_000), total=2**62 // 4)


def test_phases_match_a_plain_count_across_their_bounds():
    mix = validate_mixture({"phases": [{"corpora": {"a": 2, "b": 1}, "end": 0.3}, {"corpora": {"b": 1, "c": 3}, "end": 1.0}]})
    s = MixtureStream(mix, corpora(a=10**6, b=10**6, c=10**6), seq_len=L, total_samples=1001, seed=0)
    src, j = s.locate(np.arange(1001))
    counts = np.zeros(3, dtype=int)
    for i, x in enumerate(src.tolist()):
        assert j[i] == counts[x]
        counts[x] += 1
        if i + 1 in (300, 1001):
            assert s.counts_before(i + 1).tolist() == counts.tolist()
    assert np.bincount(src[:300], minlength=3).tolist() == [200, 100, 0]
