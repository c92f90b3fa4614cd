"""The converged-regime studies decide their claims from intervals as their docstrings say (benchmarks/reproduce/c2_schedules.py,
c4_reuse.py, c5_soups.py), the soup study's validation and test windows never overlap, and every study's JSON records
what the regime asks of it (regime.py's Study)."""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce"))

import c2_schedules  # noqa: E402
import common  # noqa: E402
import c4_reuse  # noqa: E402
import c5_soups  # noqa: E402
import regime  # noqa: E402

from renewlm.eval.heldout import heldout_windows  # noqa: E402
from renewlm.store import Store  # noqa: E402


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


def _after(forgetting: dict[str, list[float]], adaptation: dict[str, list[float]]) -> dict:
    """c2's per-arm rows after the last task: only the cells its verdict reads."""
    a = c2_schedules.PROSE
    return {arm: [{"forgetting": {a: {"values": forgetting[arm]}}, "adaptation": {"values": adaptation[arm]}}] for arm in forgetting}


def test_the_schedule_study_reads_forgetting_and_adaptation_against_cosine():
    tasks = [c2_schedules.PROSE, "weak", "strong"]
    paper = _after({"infinite": [1.0, 1.1, 1.05], "cosine": [1.5, 1.6, 1.52], "constant": [0.2, 0.25, 0.22]},
                   {"infinite": [2.00, 2.01, 2.02], "cosine": [2.00, 2.005, 2.01], "constant": [2.6, 2.7, 2.65]})
    v = c2_schedules.verdicts(paper, tasks, converged=True)
    assert v["decided"] and all(v["reproduced"].values())
    assert not c2_schedules.verdicts(paper, tasks, converged=False)["decided"]  # an unconverged task 1 decides nothing
    assert set(c2_schedules.verdicts(paper, tasks, converged=False)["reproduced"].values()) == {None}
    # infinite adapts 0.05 worse than cosine: beyond the 0.02 margin
    late = _after({"infinite": [1.0, 1.1, 1.05], "cosine": [1.5, 1.6, 1.52], "constant": [0.2, 0.25, 0.22]},
                  {"infinite": [2.05, 2.06, 2.07], "cosine": [2.00, 2.005, 2.01], "constant": [2.6, 2.7, 2.65]})
    assert c2_schedules.verdicts(late, tasks, converged=True)["checks"]["infinite_adapts_as_well"] is False
    one = {arm: [{"forgetting": {tasks[0]: {"values": r[0]["forgetting"][tasks[0]]["values"][:1]}},
                  "adaptation": {"values": r[0]["adaptation"]["values"][:1]}}] for arm, r in paper.items()}
    assert c2_schedules.verdicts(one, tasks, converged=True)["decided"] is False  # one seed: no interval


def test_a_study_records_the_regime_its_check_and_its_versions_training_time(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")  # write_study's, not the repository's docs/results
    monkeypatch.setattr(common, "ROOT", tmp_path)
    store = Store(tmp_path / "store")
    study = regime.Study("c09_probe", argparse.Namespace(seeds=[0, 1, 2]), store, {"gain": 0.01, "converged": True}, time.perf_counter())
    path = study.write({"verdict": {"decided": False}})
    assert path == tmp_path / "results" / "c09_probe.json"
    out = json.loads(path.read_text())
    assert out["study"] == "c09_probe" and out["seeds"] == [0, 1, 2] and out["base"] == regime.BASE
    assert out["regime"]["base_steps"] == regime.REGIME.base_steps and out["convergence"]["converged"] is True
    assert out["verdict"] == {"decided": False} and out["training_seconds"] == 0  # an empty store: no version trained
    assert len(out["load_average_end"]) == 3 and out["wall_seconds"] >= 0
