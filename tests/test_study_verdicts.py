"""The converged-regime studies decide their claims from intervals as their docstrings say (benchmarks/reproduce/c4_reuse.py,
c5_soups.py), and the soup study's validation and test windows never overlap."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce"))

import c4_reuse  # noqa: E402
import c5_soups  # noqa: E402

from renewlm.eval.heldout import heldout_windows  # noqa: E402


class Tokens:
    def __init__(self, n: int):
        self.data, self.num_tokens = np.arange(n), n

    def read(self, start: int, length: int) -> np.ndarray:
        assert 0 <= start and start + length <= self.num_tokens
        return self.data[start : start + length]


def test_the_soup_study_chooses_on_windows_it_does_not_report():
    split, seq_len = Tokens(1000), 10  # 99 whole windows (each needs its next token)
    parts = c5_soups.halves(split, seq_len)
    seen = {}
    for name, part in parts.items():
        n = heldout_windows(part, seq_len, part.num_tokens)
        assert n == part.count
        seen[name] = {int(part.read(i * seq_len, seq_len + 1)[0]) // seq_len for i in range(n)}  # read as eval/heldout.py reads
    assert seen["validation"].isdisjoint(seen["test"]) and seen["validation"] | seen["test"] == set(range(99))


def _rows(old: list[float], target: list[float]) -> dict:
    part = [{c5_soups.PROSE: o, c5_soups.TARGET: t} for o, t in zip(old, target)]
    return {a: {"validation": p, "test": p} for a, p in zip(c5_soups.ALPHAS, part)}


def test_the_soup_study_reproduces_only_when_every_seed_beats_the_update_on_both():
    # losses fall to α = 0.5 and rise after it: a soup better than the update (α = 1) on old data and target
    shape = [abs(a - 0.5) for a in c5_soups.ALPHAS]
    by_seed = {s: _rows([3 + x + 0.01 * s for x in shape], [6 + x - 0.01 * s for x in shape]) for s in range(3)}
    picks = {s: c5_soups.chosen(rows) for s, rows in by_seed.items()}
    assert picks == {0: 0.5, 1: 0.5, 2: 0.5}
    assert c5_soups.verdict(by_seed, picks)["reproduced"] is True
    assert c5_soups.verdict({0: by_seed[0]}, {0: 0.5})["reproduced"] is None  # one seed decides nothing
    # the update itself best on the target: the soup does not beat it there
    worse = {s: _rows([3 + x for x in shape], [6 - a + 0.001 * s for a in c5_soups.ALPHAS]) for s in range(3)}
    v = c5_soups.verdict(worse, {s: 0.5 for s in worse})
    assert v["decided"] and v["reproduced"] is False and v["checks"][f"beats_update_on_{c5_soups.TARGET}"] is False


def test_the_reuse_study_needs_five_best_and_two_and_fifty_worse_beyond_the_interval():
    score = {"never": [3.0, 3.01, 3.02], "2": [3.05, 3.06, 3.08], "5": [2.90, 2.91, 2.92], "10": [2.95, 2.96, 2.96], "50": [3.0, 3.0, 3.01]}
    assert c4_reuse.verdict(score)["reproduced"] is True
    tied = {**score, "10": [2.88, 2.93, 2.91]}  # start/10 best by its mean, but within the interval of start/5
    assert c4_reuse.verdict(tied)["best"] == "10" and c4_reuse.verdict(tied)["reproduced"] is True
    beaten = {**score, "10": [2.80, 2.81, 2.82]}
    assert c4_reuse.verdict(beaten)["reproduced"] is False
    close = {**score, "2": [2.89, 2.93, 2.93]}  # start/2 not worse than start/5 beyond the interval
    assert c4_reuse.verdict(close)["checks"]["2_worse_than_five"] is False
    assert c4_reuse.verdict({k: v[:1] for k, v in score.items()})["reproduced"] is None
