"""Schedules against their formulas, written out here independently of the code under test."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewlm.errors import ConfigError
from renewlm.optim.schedule import load_schedule, set_lr, validate_schedule


def build(total, tokens_per_step=None, **spec):
    return validate_schedule(spec).build(total, tokens_per_step)


def test_cosine_rewarm_redecay_values():
    s = build(1000, name="cosine", peak_lr=3e-4)  # warmup 10 steps, floor 3e-5
    assert s.lr(0) == pytest.approx(3e-4 * 1 / 10)
    assert s.lr(4) == pytest.approx(3e-4 * 5 / 10)
    assert s.lr(9) == pytest.approx(3e-4)
    for t in (10, 200, 505, 999, 1000):
        expected = 3e-5 + (3e-4 - 3e-5) / 2 * (1 + math.cos(math.pi * (t - 10) / 990))
        assert s.lr(t) == pytest.approx(expected)
    assert s.events["warmup_end"] == 10 and s.peak_lr == 3e-4


def test_wsd_shapes():
    T, peak = 1000, 1e-3
    for shape, f in {
        "linear": lambda x: 1 - x,
        "cosine": lambda x: 0.5 * (1 + math.cos(math.pi * x)),
        "1-sqrt": lambda x: 1 - math.sqrt(x),
        "1-square": lambda x: 1 - x * x,
    }.items():
        s = build(T, name="wsd", peak_lr=peak, decay_shape=shape)
        assert s.lr(500) == peak
        for t in (800, 850, 900, 990):
            assert s.lr(t) == pytest.approx(peak * f((t - 800) / 200)), shape
        assert s.lr(T) == 0.0
    s = build(T, name="wsd", peak_lr=peak, min_lr=1e-5, decay_shape="exp")
    assert s.lr(900) == pytest.approx(peak * (1e-5 / peak) ** 0.5)


def test_infinite_cosine_and_inverse_sqrt_cooldowns_and_the_anneal():
    T, peak, floor = 1000, 3e-4, 3e-5
    const = (peak + floor) / 2
    s = build(T, name="infinite", peak_lr=peak, min_lr=floor, cooldown_fraction=0.5, anneal_fraction=0.2)
    # warmup 10, cooldown 10..510, constant 510..800, anneal 800..1000
    assert s.lr(260) == pytest.approx(const + (peak - const) / 2 * (1 + math.cos(math.pi * 250 / 500)))
    assert s.lr(600) == pytest.approx(const)
    assert s.lr(900) == pytest.approx(const * (floor / const) ** (100 / 200))
    assert s.lr(T) == pytest.approx(floor)
    alpha = 10.0
    h = lambda x: 1 / math.sqrt(1 + alpha * x) - 1  # noqa: E731
    s = build(T, name="infinite", peak_lr=peak, min_lr=floor, cooldown_shape="inv-sqrt", cooldown_fraction=0.5)
    for u in (0, 100, 250, 499):
        assert s.lr(10 + u) == pytest.approx(peak + (const - peak) * h(u / 500) / h(1))
    # anneal 0: the main path ends on the constant LR, ready to continue without re-warming
    assert s.lr(T) == pytest.approx(const) and "anneal_start" not in s.events


def test_reuse_switches_where_the_lr_reaches_a_fifth_of_its_start():
    T = 10_000
    s = build(T, name="reuse", start_lr=4.5e-5)
    assert s.lr(0) == 4.5e-5  # no warmup
    assert s.lr(T) == pytest.approx(4.5e-7)
    # closed form: (1 + cos πx)/2 = (1/5 − 1/100) / (1 − 1/100)  =>  x = 0.7113...
    x = math.acos(2 * (0.2 - 0.01) / 0.99 - 1) / math.pi
    assert x == pytest.approx(0.711, abs=1e-3)
    switch = s.events["switch"]
    assert switch == math.ceil(x * T)
    assert s.lr(switch) <= 0.2 * 4.5e-5 < s.lr(switch - 1)


def test_branch_holds_the_main_path_lr_then_fully_decays():
    s = build(1000, name="branch", start_lr=1e-3)
    assert s.lr(0) == s.lr(899) == 1e-3
    assert s.lr(950) == pytest.approx(1e-3 * (1 - math.sqrt(0.5)))
    assert s.lr(1000) == 0.0


def test_lengths_in_tokens():
    s = build(1000, 4096, name="wsd", peak_lr=1e-3, warmup_tokens=4096 * 50, decay_tokens=4096 * 100)
    assert s.events["warmup_end"] == 50 and s.events["decay_start"] == 900
    with pytest.raises(ConfigError, match="tokens per step"):
        build(1000, name="wsd", peak_lr=1e-3, decay_tokens=4096)
    with pytest.raises(ConfigError, match="not both"):
        validate_schedule({"name": "wsd", "peak_lr": 1e-3, "decay_fraction": 0.1, "decay_tokens": 10})
    with pytest.raises(ConfigError, match="add up past the run"):
        build(100, 10, name="wsd", peak_lr=1e-3, warmup_tokens=600, decay_tokens=600)


def test_set_lr_drives_every_param_group():
    import torch

    opt = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(2))]}])
    set_lr(opt, 0.123)
    assert [g["lr"] for g in opt.param_groups] == [0.123, 0.123]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "cosine", "peak_lr": 1e-3, "warmup_fraction": 1.5}, "less than or equal to 1"),
        ({"name": "wsd", "peak_lr": 1e-3, "warmup_fraction": 0.6, "decay_fraction": 0.6}, "add up past the whole run"),
        ({"name": "cosine", "peak_lr": 1e-4, "min_lr": 1e-3}, "above peak_lr"),
        ({"name": "infinite", "peak_lr": 1e-4, "min_lr": 0.0, "anneal_fraction": 0.1}, "min_lr > 0"),
        ({"name": "wsd", "peak_lr": 1e-3, "decay_shape": "exp"}, "min_lr > 0"),
        ({"name": "nope", "peak_lr": 1e-3}, "does not match any of the expected tags"),
        ({"name": "cosine", "peak_lr": 1e-3, "warmup_steps": 10}, "unknown field"),
        ({"name": "cosine"}, "required field is missing"),
        ({"name": "reuse", "start_lr": 1e-4, "switch_at_lr_ratio": 1.5}, "less than 1"),
        ({"name": "cosine", "peak_lr": -1.0}, "greater than or equal to 0"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate_schedule(spec)


def test_load_from_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: cosine\npeak_lr: 3e-4\n")  # YAML 1.1 would read 3e-4 as a string
    assert load_schedule(path).peak_lr == 3e-4


SPECS = st.one_of(
    st.builds(lambda p, w, f: {"name": "cosine", "peak_lr": p, "min_lr": p * f, "warmup_fraction": w},
              st.floats(1e-5, 1e-2), st.floats(0, 0.5), st.floats(0, 1)),
    st.builds(lambda p, w, d, shape: {"name": "wsd", "peak_lr": p, "min_lr": p / 100, "warmup_fraction": w, "decay_fraction": d, "decay_shape": shape},
              st.floats(1e-5, 1e-2), st.floats(0, 0.4), st.floats(0, 0.6), st.sampled_from(["linear", "cosine", "1-sqrt", "1-square", "exp"])),
    st.builds(lambda p, w, c, a, shape: {"name": "infinite", "peak_lr": p, "min_lr": p / 10, "warmup_fraction": w, "cooldown_fraction": c, "anneal_fraction": a, "cooldown_shape": shape},
              st.floats(1e-5, 1e-2), st.floats(0, 0.3), st.floats(0, 0.4), st.floats(0, 0.3), st.sampled_from(["cosine", "inv-sqrt"])),
    st.builds(lambda p: {"name": "reuse", "start_lr": p}, st.floats(1e-6, 1e-3)),
    st.builds(lambda p, d: {"name": "branch", "start_lr": p, "decay_fraction": d}, st.floats(1e-5, 1e-2), st.floats(0, 1)),
)


@settings(max_examples=150, deadline=None)
@given(spec=SPECS, total=st.integers(1, 3000))
def test_properties_over_random_lengths_and_fractions(spec, total):
    s = validate_schedule(spec).build(total)
    lrs = [s.lr(t) for t in range(total + 1)]
    top = max(lrs)
    floor = spec.get("min_lr", spec.get("start_lr", 0) / 100 if spec["name"] == "reuse" else 0.0)
    after_warmup = s.events.get("warmup_end", 0)
    assert all(0 <= lr <= s.peak_lr + 1e-15 for lr in lrs)
    assert all(lr >= floor - 1e-15 for lr in lrs[after_warmup:])  # the warmup climbs from 0 to the peak
    assert top == pytest.approx(s.peak_lr)
    for stage in s.stages:
        run = lrs[stage.start : stage.end]
        steps = [b - a for a, b in zip(run, run[1:])]
        if stage.name == "warmup":
            assert all(d >= -1e-15 for d in steps)  # monotone up
        elif stage.a >= stage.b:
            assert all(d <= 1e-15 for d in steps)  # monotone down in decays
    # Continuity: where one stage hands over to the next at the same LR, the step across the boundary
    # changes the LR by no more than the largest step inside the two stages. (A recipe whose middle
    # stage rounds to 0 steps, e.g. infinite with cooldown_fraction 0, jumps by design.)
    for left, right in zip(s.stages, s.stages[1:]):
        if left.b != pytest.approx(right.a):
            continue
        inside = [abs(lrs[t + 1] - lrs[t]) for t in range(left.start, right.end - 1) if t + 1 != right.start]
        largest = max(inside, default=0.0)
        # a warmup's own increment bounds the step onto its last value
        if left.name == "warmup":
            largest = max(largest, (left.b - left.a) / (left.end - left.start))
        assert abs(lrs[right.start] - lrs[right.start - 1]) <= largest + 1e-12
