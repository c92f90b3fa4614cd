"""Cadences: the planned steps, and evaluators firing at exactly those steps in a loop."""

import math
from itertools import pairwise

import pytest

from renewlm.eval.cadence import Every, LogSpaced
from renewlm.eval.evaluator import Evaluator, evaluate_due


def test_log_spaced_steps_are_dense_at_the_start_and_include_both_ends():
    # exp(k/7 · ln 1001) − 1 for k = 0..7, rounded: 0, 1.68, 6.2, 18.3, 51.1, 138.2, 371.6, 1000
    assert LogSpaced(log=8).steps(1000) == [0, 2, 6, 18, 51, 138, 372, 1000]
    assert LogSpaced(log=2).steps(37) == [0, 37]
    short = LogSpaced(log=8).steps(5)  # close points merge: never more than asked, ends kept
    assert short[0] == 0 and short[-1] == 5 and len(short) <= 8 and short == sorted(set(short))


def test_log_spaced_gaps_grow():
    steps = LogSpaced(log=10).steps(100_000)
    gaps = [b - a for a, b in pairwise(steps)]
    assert gaps == sorted(gaps)
    assert all(math.isclose((b + 1) / (a + 1), 100_001 ** (1 / 9), rel_tol=0.05) for a, b in pairwise(steps[3:]))


def test_every_n_steps_includes_the_first_and_last_step():
    assert Every(every=50).steps(120) == [0, 50, 100, 120]
    assert Every(every=0).steps(7) == [0, 7]
    assert Every(every=4).steps(8) == [0, 4, 8]


@pytest.mark.parametrize("cadence", [Every(every=3), Every(every=0), LogSpaced(log=5), LogSpaced(log=30)])
def test_due_agrees_with_the_planned_steps(cadence):
    for total in (1, 9, 64):
        assert [s for s in range(total + 1) if cadence.due(s, total)] == cadence.steps(total)


class Counter(Evaluator):
    def __init__(self, name, cadence):
        self.name, self.cadence, self.calls = name, cadence, []

    def evaluate(self, model):
        self.calls.append(model["step"])
        return {"calls": float(len(self.calls))}


def test_evaluators_fire_at_the_planned_steps_of_a_loop():
    total = 200
    log, every = Counter("log", LogSpaced(log=6)), Counter("every", Every(every=80))
    records = []
    for step in range(total + 1):  # as the loop: before each step, and once after the last
        results = evaluate_due([log, every], {"step": step}, step, total)
        if results:
            records.append((step, results))
    assert log.calls == [0, 2, 7, 23, 69, 200]  # round(201^(k/5)) − 1: 2.89, 8.34, 24.1, 69.6
    assert every.calls == [0, 80, 160, 200]
    assert records[0] == (0, {"log": {"calls": 1.0}, "every": {"calls": 1.0}})
    assert records[1] == (2, {"log": {"calls": 2.0}})
