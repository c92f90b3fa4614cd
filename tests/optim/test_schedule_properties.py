"""Properties every named schedule keeps over random lengths and fractions (hypothesis)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewlm.optim.schedule import validate_schedule

PEAK = st.floats(1e-5, 1e-2)
DECAYS = st.sampled_from(["linear", "cosine", "1-sqrt", "1-square", "exp"])

# Each strategy yields (spec, floor): the LR the schedule ends at.
ORDER = {  # the stages of each schedule in order; a boundary between stages not adjacent here skips a 0-step stage
    "cosine": ["warmup", "decay"], "wsd": ["warmup", "stable", "decay"], "reuse": ["decay"], "constant": ["constant"],
    "infinite": ["warmup", "cooldown", "constant", "anneal"], "branch": ["stable", "decay"],
}
SPECS = st.one_of(
    st.builds(lambda p, w, f, s: ({"name": "cosine", "peak_lr": p, "min_lr": p * f, "warmup_fraction": w, "start_lr": p * s}, p * f),
              PEAK, st.floats(0, 0.5), st.floats(0, 1), st.floats(0, 1)),
    st.builds(lambda p, w, d, shape, s: ({"name": "wsd", "peak_lr": p, "min_lr": p / 100, "warmup_fraction": w, "decay_fraction": d,
                                          "decay_shape": shape, "start_lr": p * s}, p / 100),
              PEAK, st.floats(0, 0.4), st.floats(0, 0.6), DECAYS, st.floats(0, 1)),
    # the floor is min_lr after an anneal, else const_lr (resolved below where the anneal rounds to 0 steps)
    st.builds(lambda p, w, c, a, shape, alpha: ({"name": "infinite", "peak_lr": p, "min_lr": p / 10, "warmup_fraction": w, "cooldown_fraction": c,
                                                 "anneal_fraction": a, "cooldown_shape": shape, "timescale": alpha}, None),
              PEAK, st.floats(0, 0.3), st.floats(0, 0.4), st.sampled_from([0.0, 0.05, 0.15, 0.3]), st.sampled_from(["cosine", "inv-sqrt"]),
              st.floats(0.5, 50)),
    st.builds(lambda p, r: ({"name": "reuse", "start_lr": p, "switch_at_lr_ratio": r}, p / 100), st.floats(1e-6, 1e-3), st.floats(0.011, 0.99)),
    st.builds(lambda p, d, shape: ({"name": "branch", "start_lr": p, "min_lr": p / 50, "decay_fraction": d, "decay_shape": shape}, p / 50),
              PEAK, st.floats(0, 1), DECAYS),
    st.builds(lambda p: ({"name": "constant", "lr": p}, p), PEAK),
)


@settings(max_examples=200, deadline=None)
@given(spec_floor=SPECS, total=st.integers(1, 2000))
def test_properties_over_random_lengths_and_fractions(spec_floor, total):
    spec, floor = spec_floor
    s = validate_schedule(spec).build(total)
    if spec["name"] == "infinite":
        annealed = s.events["anneal_end"] > s.events["anneal_start"]
        floor = spec["min_lr"] if annealed else (spec["peak_lr"] + spec["min_lr"]) / 2
    lrs = [s.lr(t) for t in range(total + 1)]
    warmup_end = s.events.get("warmup_end", 0)
    eps = 1e-12 * s.peak_lr

    # the stages tile the run
    assert s.stages[0].start == 0 and s.stages[-1].end == total
    assert all(a.end == b.start for a, b in zip(s.stages, s.stages[1:]))
    # bounds: the warmup climbs from start_lr; after it the LR stays between the floor and the peak
    assert max(lrs) == pytest.approx(s.peak_lr)
    assert all(spec.get("start_lr", 0) - eps <= lr <= s.peak_lr + eps for lr in lrs[:warmup_end])
    assert all(floor - eps <= lr <= s.peak_lr + eps for lr in lrs[warmup_end:])
    assert lrs[-1] == pytest.approx(floor)
    # monotone: up during the warmup, never up after it (every later stage holds or decays)
    assert all(b >= a - eps for a, b in zip(lrs[:warmup_end], lrs[1:warmup_end]))
    assert all(b <= a + eps for a, b in zip(lrs[warmup_end:], lrs[warmup_end + 1 :]))
    # continuity: each stage starts where the one before was heading, so the step across a boundary
    # changes the LR by no more than the largest step inside the stage before it. A stage of 1 step,
    # or one rounded to 0 steps between two others (a cooldown of 0 steps), is a jump by design.
    order = ORDER[spec["name"]]
    assert [stage.name for stage in s.stages] == [n for n in order if n in {stage.name for stage in s.stages}]
    for left, right in zip(s.stages, s.stages[1:]):
        if left.end - left.start < 2 or order.index(right.name) != order.index(left.name) + 1:
            continue
        inside = max(abs(lrs[t + 1] - lrs[t]) for t in range(left.start, left.end - 1))
        assert abs(lrs[right.start] - lrs[right.start - 1]) <= inside + eps, (left, right)
    # reuse's switch: the first step at or below the switch LR
    if spec["name"] == "reuse":
        target, switch = spec["switch_at_lr_ratio"] * spec["start_lr"], s.events["switch"]
        assert lrs[switch] <= target and all(lr > target for lr in lrs[:switch])


@settings(max_examples=100, deadline=None)
@given(total=st.integers(1, 5000), fractions=st.lists(st.floats(0, 1), min_size=3, max_size=3))
def test_rounded_lengths_fit_any_run_the_fractions_fit(total, fractions):
    w, c, a = (f / max(1.0, sum(fractions)) for f in fractions)  # scaled so they sum to at most 1
    s = validate_schedule({"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5, "warmup_fraction": w,
                           "cooldown_fraction": c, "anneal_fraction": a}).build(total)
    lengths = [s.events[f"{n}_end"] - s.events[f"{n}_start"] for n in ("warmup", "cooldown", "anneal")]
    assert sum(lengths) <= total
    assert all(abs(n - f * total) <= 1 for n, f in zip(lengths, (w, c, a)))  # each within a step of exact
