"""Schedules at named points, against their formulas written out here (not by calling renewlm)."""

import math

import pytest

from renewlm.errors import ConfigError
from renewlm.optim.schedule import SCHEDULES, load_schedule, set_lr, validate_schedule


def build(total, tokens_per_step=None, **spec):
    return validate_schedule(spec).build(total, tokens_per_step)


def cosine(a, b, x):
    return b + (a - b) / 2 * (1 + math.cos(math.pi * x))


def test_cosine_rewarm_redecay_values():
    s = build(1000, name="cosine", peak_lr=3e-4)  # warmup round(0.01·1000) = 10 steps, floor 0.1·peak
    assert s.lr(0) == pytest.approx(3e-4 * 1 / 10)  # (t+1)/W: the first step already learns
    assert s.lr(4) == pytest.approx(3e-4 * 5 / 10)
    assert s.lr(9) == pytest.approx(3e-4)  # the last warmup step runs at the peak
    for t in (10, 200, 505, 999, 1000):
        assert s.lr(t) == pytest.approx(3e-5 + (3e-4 - 3e-5) / 2 * (1 + math.cos(math.pi * (t - 10) / 990)))
    assert s.lr(1000) == pytest.approx(3e-5) and s.peak_lr == 3e-4
    assert s.events["warmup_end"] == s.events["decay_start"] == 10


def test_warmup_from_a_start_lr():
    s = build(200, name="wsd", peak_lr=1e-3, start_lr=1e-4, warmup_fraction=0.1)  # 20 warmup steps
    for t in (0, 7, 19):
        assert s.lr(t) == pytest.approx(1e-4 + (1e-3 - 1e-4) * (t + 1) / 20)
    assert s.lr(20) == 1e-3


def test_wsd_decay_shapes():
    T, peak = 1000, 1e-3
    for shape, f in {
        "linear": lambda x: 1 - x,
        "cosine": lambda x: 0.5 * (1 + math.cos(math.pi * x)),
        "1-sqrt": lambda x: 1 - math.sqrt(x),
        "1-square": lambda x: 1 - x * x,
    }.items():
        s = build(T, name="wsd", peak_lr=peak, decay_shape=shape)  # decay over the last 200 steps
        assert s.lr(10) == s.lr(500) == s.lr(799) == peak
        for t in (800, 850, 900, 990, 999):
            assert s.lr(t) == pytest.approx(peak * f((t - 800) / 200)), shape
        assert s.lr(T) == 0.0
    # exp needs a floor above 0: peak·(floor/peak)^x
    s = build(T, name="wsd", peak_lr=peak, min_lr=1e-5, decay_shape="exp")
    assert s.lr(900) == pytest.approx(peak * (1e-5 / peak) ** 0.5)
    assert s.lr(T) == pytest.approx(1e-5)


def test_infinite_cosine_cooldown_constant_and_anneal():
    T, peak, floor = 1000, 3e-4, 3e-5
    const = (peak + floor) / 2  # the default const_lr
    s = build(T, name="infinite", peak_lr=peak, min_lr=floor, cooldown_fraction=0.5, anneal_fraction=0.2)
    # warmup 0..10, cooldown 10..510, constant 510..800, anneal 800..1000
    assert s.lr(9) == pytest.approx(peak) and s.lr(10) == pytest.approx(peak)
    assert s.lr(260) == pytest.approx(const + (peak - const) / 2 * (1 + math.cos(math.pi * 250 / 500)))
    assert s.lr(510) == s.lr(799) == pytest.approx(const)
    assert s.lr(900) == pytest.approx(const * (floor / const) ** (100 / 200))
    assert s.lr(T) == pytest.approx(floor)
    assert [s.events[k] for k in ("cooldown_end", "constant_start", "anneal_start")] == [510, 510, 800]


def test_infinite_inverse_sqrt_cooldown_and_the_main_path():
    T, peak, floor, alpha = 1000, 3e-4, 3e-5, 4.0
    const = 1e-4
    s = build(T, name="infinite", peak_lr=peak, min_lr=floor, const_lr=const,
              cooldown_shape="inv-sqrt", cooldown_fraction=0.5, timescale=alpha)

    def h(x):
        return 1 / math.sqrt(1 + alpha * x) - 1

    for u in (0, 1, 100, 250, 499):
        assert s.lr(10 + u) == pytest.approx(peak + (const - peak) * h(u / 500) / h(1))
    # anneal 0: the main path ends on the constant LR and holds it (ready to continue without re-warming)
    assert s.lr(T) == s.lr(T + 500) == pytest.approx(const)
    assert s.events["anneal_start"] == s.events["anneal_end"] == T
    assert [st.name for st in s.stages] == ["warmup", "cooldown", "constant"]


@pytest.mark.parametrize("T", [1, 2, 3, 7, 100, 1000, 10_000, 123_457])
def test_reuse_switches_at_the_first_step_at_a_fifth_of_its_start(T):
    start = 4.5e-5
    s = build(T, name="reuse", start_lr=start)
    assert s.lr(0) == start  # no warmup
    assert s.lr(T) == pytest.approx(start / 100)
    # closed form: (1 + cos πx)/2 = (1/5 − 1/100) / (1 − 1/100)  =>  x = 0.7113...
    x = math.acos(2 * (0.2 - 0.01) / 0.99 - 1) / math.pi
    assert x == pytest.approx(0.7113, abs=1e-4)
    switch = s.events["switch"]
    assert switch == math.ceil(x * T)
    assert s.lr(switch) <= 0.2 * start
    if switch > 0:
        assert s.lr(switch - 1) > 0.2 * start


@pytest.mark.parametrize("ratio", [0.5, 0.1, 0.02])
def test_reuse_other_switch_ratios(ratio):
    # Parmar et al. also tried switching at 1/2, 1/10 and 1/50 of the start LR.
    T = 10_000
    s = build(T, name="reuse", start_lr=1.0, switch_at_lr_ratio=ratio)
    x = math.acos(2 * (ratio - 0.01) / 0.99 - 1) / math.pi
    assert s.events["switch"] == math.ceil(x * T)
    t = 1234
    assert s.lr(t) == pytest.approx(cosine(1.0, 0.01, t / T))


def test_branch_holds_the_main_path_lr_then_fully_decays():
    s = build(1000, name="branch", start_lr=1e-3)  # decay over the last 10%
    assert s.lr(0) == s.lr(899) == 1e-3
    assert s.lr(950) == pytest.approx(1e-3 * (1 - math.sqrt(0.5)))
    assert s.lr(1000) == 0.0
    full = build(1000, name="branch", start_lr=1e-3, min_lr=1e-5, decay_fraction=1.0, decay_shape="cosine")
    assert full.lr(0) == 1e-3 and full.lr(300) == pytest.approx(cosine(1e-3, 1e-5, 0.3))
    assert [st.name for st in full.stages] == ["decay"]


def test_constant():
    s = build(50, name="constant", lr=3e-5)
    assert {s.lr(t) for t in range(51)} == {3e-5} and s.peak_lr == 3e-5


def test_stages_are_name_start_end_tuples_covering_the_run():
    s = build(1000, name="wsd", peak_lr=1e-3, warmup_fraction=0.05, decay_fraction=0.25)
    assert [tuple(st) for st in s.stages] == [("warmup", 0, 50), ("stable", 50, 750), ("decay", 750, 1000)]
    name, start, end = s.stages[1]
    assert (name, start, end) == ("stable", 50, 750) and s.total_steps == 1000


EVENTS = {
    "cosine": {"peak_lr": 1e-3},
    "wsd": {"peak_lr": 1e-3},
    "infinite": {"peak_lr": 1e-3, "min_lr": 1e-5},
    "reuse": {"start_lr": 1e-4},
    "constant": {"lr": 1e-4},
    "branch": {"start_lr": 1e-3},
}
EVENT_NAMES = {
    "cosine": {"warmup_start", "warmup_end", "decay_start", "decay_end"},
    "wsd": {"warmup_start", "warmup_end", "stable_start", "stable_end", "decay_start", "decay_end"},
    "infinite": {f"{s}_{e}" for s in ("warmup", "cooldown", "constant", "anneal") for e in ("start", "end")},
    "reuse": {"decay_start", "decay_end", "switch"},
    "constant": {"constant_start", "constant_end"},
    "branch": {"stable_start", "stable_end", "decay_start", "decay_end"},
}


@pytest.mark.parametrize("name", sorted(EVENTS))
@pytest.mark.parametrize("T", [10, 1000])  # at 10 steps a 1% warmup rounds to 0 steps: its events stay
def test_each_schedule_always_has_the_same_event_names(name, T):
    s = build(T, name=name, **EVENTS[name])
    assert set(s.events) == EVENT_NAMES[name]
    assert all(0 <= step <= T for step in s.events.values())
    for stage in s.stages:
        assert s.events[f"{stage.name}_start"] == stage.start and s.events[f"{stage.name}_end"] == stage.end


def test_fractions_round_to_whole_steps_and_never_overflow_the_run():
    s = build(1000, name="cosine", peak_lr=1e-3, warmup_fraction=0.0125)  # 12.5 -> 12 (round half to even)
    assert s.events["warmup_end"] == 12
    # two halves of 3 steps each round to 2; the stage rounded up most gives a step back
    s = build(3, name="wsd", peak_lr=1e-3, warmup_fraction=0.5, decay_fraction=0.5)
    assert s.events["warmup_end"] + (3 - s.events["decay_start"]) == 3 and s.events["stable_end"] == s.events["decay_start"]


def test_lengths_in_tokens():
    s = build(1000, 4096, name="wsd", peak_lr=1e-3, warmup_tokens=4096 * 50, decay_tokens=4096 * 100)
    assert s.events["warmup_end"] == 50 and s.events["decay_start"] == 900
    s = build(1000, 1000, name="infinite", peak_lr=1e-3, min_lr=1e-5, warmup_tokens=20_400, cooldown_tokens=300_000, anneal_tokens=100_000)
    assert [s.events[k] for k in ("warmup_end", "cooldown_end", "anneal_start")] == [20, 320, 900]
    s = build(100, 10, name="branch", start_lr=1e-3, decay_tokens=2.5e2)  # a whole float (YAML's 2.5e2) is fine
    assert s.events["decay_start"] == 75
    with pytest.raises(ConfigError, match="decay_tokens: Input should be a valid integer"):
        validate_schedule({"name": "branch", "start_lr": 1e-3, "decay_tokens": 2.5})
    # a fraction replaced by tokens does not count towards the fractions' sum
    validate_schedule({"name": "wsd", "peak_lr": 1e-3, "warmup_fraction": 0.9, "decay_tokens": 10})
    with pytest.raises(ConfigError, match="tokens per step"):
        build(1000, name="wsd", peak_lr=1e-3, decay_tokens=4096)
    with pytest.raises(ConfigError, match="not both"):
        validate_schedule({"name": "wsd", "peak_lr": 1e-3, "decay_fraction": 0.1, "decay_tokens": 10})
    with pytest.raises(ConfigError, match="add up past the run's 100 steps"):
        build(100, 10, name="wsd", peak_lr=1e-3, warmup_tokens=600, decay_tokens=600)


def test_set_lr_drives_every_param_group():
    import torch

    opt = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 1.0}, {"params": [torch.nn.Parameter(torch.zeros(2))]}])
    set_lr(opt, 0.123)
    assert [g["lr"] for g in opt.param_groups] == [0.123, 0.123]


def test_step_outside_the_run():
    s = build(100, name="cosine", peak_lr=1e-3)
    assert s.lr(150) == s.lr(100) == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        s.lr(-1)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "cosine", "peak_lr": 1e-3, "warmup_fraction": 1.5}, "warmup_fraction: Input should be less than or equal to 1"),
        ({"name": "wsd", "peak_lr": 1e-3, "decay_fraction": -0.1}, "decay_fraction: Input should be greater than or equal to 0"),
        ({"name": "wsd", "peak_lr": 1e-3, "warmup_fraction": 0.6, "decay_fraction": 0.6}, "warmup_fraction 0.6 \\+ decay_fraction 0.6 add up past the whole run"),
        ({"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5, "cooldown_fraction": 0.7, "anneal_fraction": 0.4}, "add up past the whole run"),
        ({"name": "cosine", "peak_lr": 1e-4, "min_lr": 1e-3}, "min_lr 0.001 is above peak_lr 0.0001"),
        ({"name": "wsd", "peak_lr": 1e-4, "start_lr": 1e-3}, "start_lr 0.001 is above peak_lr"),
        ({"name": "infinite", "peak_lr": 1e-4, "min_lr": 1e-5, "const_lr": 2e-4}, "const_lr 0.0002 is above peak_lr"),
        ({"name": "infinite", "peak_lr": 1e-4, "min_lr": 5e-5, "const_lr": 2e-5}, "min_lr 5e-05 is above const_lr"),
        ({"name": "branch", "start_lr": 1e-4, "min_lr": 1e-3}, "min_lr 0.001 is above start_lr"),
        ({"name": "reuse", "start_lr": 1e-4, "min_lr": 1e-3}, "min_lr 0.001 is above start_lr"),
        ({"name": "reuse", "start_lr": 1e-4, "min_lr": 5e-5}, "puts the switch below the floor"),
        ({"name": "infinite", "peak_lr": 1e-4, "min_lr": 0.0, "anneal_fraction": 0.1}, "min_lr > 0"),
        ({"name": "infinite", "peak_lr": 1e-4, "min_lr": 0.0, "anneal_tokens": 100}, "min_lr > 0"),
        ({"name": "wsd", "peak_lr": 1e-3, "decay_shape": "exp"}, "min_lr > 0"),
        ({"name": "branch", "start_lr": 1e-3, "decay_shape": "exp"}, "min_lr > 0"),
        ({"name": "wsd", "peak_lr": 1e-3, "decay_shape": "quadratic"}, "decay_shape: Input should be 'linear', 'cosine'"),
        ({"name": "nope", "peak_lr": 1e-3}, "'nope' found using 'name' does not match any of the expected tags"),
        ({"peak_lr": 1e-3}, "discriminator 'name'"),
        ({"name": "cosine", "peak_lr": 1e-3, "warmup_steps": 10}, "cosine.warmup_steps: unknown field"),
        ({"name": "cosine"}, "cosine.peak_lr: required field is missing"),
        ({"name": "reuse", "start_lr": 1e-4, "switch_at_lr_ratio": 1.5}, "less than 1"),
        ({"name": "cosine", "peak_lr": 0.0}, "peak_lr: Input should be greater than 0"),
        ({"name": "cosine", "peak_lr": float("inf")}, "peak_lr: Input should be a finite number"),
        ({"name": "cosine", "peak_lr": float("nan")}, "peak_lr: Input should be a finite number"),
        ({"name": "cosine", "peak_lr": "3e-4"}, "peak_lr: Input should be a valid number"),
        ({"name": "wsd", "peak_lr": 1e-3, "decay_tokens": -5}, "decay_tokens: Input should be greater than or equal to 0"),
    ],
)
def test_bad_specs_say_what_and_where(spec, message):
    with pytest.raises(ConfigError, match=message) as e:
        validate_schedule(spec, where="run.yaml: schedule")
    assert str(e.value).startswith("run.yaml: schedule") and "\n" not in str(e.value)


@pytest.mark.parametrize("total, tokens_per_step, message", [(0, None, "at least 1 step"), (10, 0, "tokens per step must be at least 1")])
def test_bad_build_arguments(total, tokens_per_step, message):
    with pytest.raises(ConfigError, match=message):
        build(total, tokens_per_step, name="cosine", peak_lr=1e-3)


def test_load_from_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: cosine\npeak_lr: 3e-4\n")  # YAML 1.1 would read 3e-4 as a string
    assert load_schedule(path).peak_lr == 3e-4
    path.write_text("name: infinite\npeak_lr: 1\nmin_lr: 0\ntimescale: 5\n")  # ints are fine for float fields
    assert load_schedule(path).timescale == 5.0


def test_the_spec_union_is_the_schedules_tuple():
    names = {cls.model_fields["name"].annotation.__args__[0]: cls for cls in SCHEDULES}
    assert set(names) == set(EVENTS)  # every schedule the tests know, and no other
    for name, cls in names.items():
        assert type(validate_schedule({"name": name, **EVENTS[name]})) is cls


@pytest.mark.parametrize("spec, peak, floor, why", [
    ({"name": "cosine", "peak_lr": 1e-3}, 1e-3, 1e-4, "decays by design"),  # floor 0.1·peak
    ({"name": "wsd", "peak_lr": 1e-3, "min_lr": 1e-5}, 1e-3, 1e-5, "has a decay stage"),
    ({"name": "wsd", "peak_lr": 1e-3, "decay_fraction": 0.0}, 1e-3, 0.0, None),
    ({"name": "wsd", "peak_lr": 1e-3, "decay_fraction": 0.0, "warmup_tokens": 8}, 1e-3, 0.0, None),
    ({"name": "wsd", "peak_lr": 1e-3, "decay_tokens": 16}, 1e-3, 0.0, "has a decay stage"),
    ({"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5}, 1e-3, 1e-5, None),  # the main path ends on const_lr
    ({"name": "infinite", "peak_lr": 1e-3, "min_lr": 1e-5, "anneal_tokens": 16}, 1e-3, 1e-5, "has an anneal stage"),
    ({"name": "reuse", "start_lr": 1e-4}, 1e-4, 1e-6, "decays by design"),  # floor start/100
    ({"name": "constant", "lr": 2e-4}, 2e-4, 2e-4, None),
    ({"name": "branch", "start_lr": 1e-3, "min_lr": 1e-5}, 1e-3, 1e-5, "has a decay stage"),
    ({"name": "branch", "start_lr": 1e-3, "decay_fraction": 0.0}, 1e-3, 0.0, None),
])
def test_each_schedule_says_its_peak_floor_and_decay(spec, peak, floor, why):
    s = validate_schedule(spec)
    assert (s.peak, s.floor, s.decays()) == (pytest.approx(peak), pytest.approx(floor), why)
    curve = s.build(100, tokens_per_step=1)
    assert curve.peak_lr == pytest.approx(peak)  # the curve's own top agrees with the spec's
    if why is not None:  # a decaying schedule ends on its floor
        assert curve.lr(100) == pytest.approx(floor)


@pytest.mark.parametrize("spec", [{"name": "cosine", "peak_lr": 2e-3}, {"name": "wsd", "peak_lr": 1e-3}, {"name": "constant", "lr": 1e-3},
                                  {"name": "branch", "start_lr": 1e-3, "decay_fraction": 0.3}])
def test_lrs_is_every_steps_lr(spec):
    schedule = validate_schedule(spec).build(977)
    assert schedule.lrs() == [schedule.lr(i) for i in range(977)]
