"""The loss law's areas against sums worked out by hand, and its fit against curves drawn from a known law."""

import numpy as np
import pytest

from renewlm.optim.schedule import validate_schedule
from renewlm.updates import loss_law
from renewlm.updates.loss_law import AnnealingLaw, FitError, UpdateLaw, areas, fit, fit_update


def _lrs(spec: dict, steps: int) -> list[float]:
    schedule = validate_schedule(spec).build(steps)
    return [schedule.lr(i) for i in range(steps)]


def test_a_constant_lr_moves_the_weights_and_anneals_nothing():
    s1, s2 = areas([1e-3] * 10)
    assert s1 == pytest.approx([1e-3 * k for k in range(1, 11)])
    assert not s2.any()


def test_one_drop_keeps_annealing_with_momentum():
    # LR 1.0 then 0.5 from step 2 on: m_2 = 0.5, then m_k = λ·m_(k−1); S2 after step k is their sum.
    s1, s2 = areas([1.0, 1.0, 0.5, 0.5, 0.5], decay=0.9)
    assert s1 == pytest.approx([1.0, 2.0, 2.5, 3.0, 3.5])
    assert s2 == pytest.approx([0.0, 0.0, 0.5, 0.5 + 0.45, 0.5 + 0.45 + 0.405])


def test_a_rewarm_is_a_negative_annealing_but_the_first_warmup_is_none():
    lrs = [0.25, 0.5, 0.75, 1.0, 0.5, 1.0]
    _, s2 = areas(lrs, warmup_steps=4, decay=0.0)  # λ = 0: each step's own drop
    assert s2 == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.5, 0.0])  # the decay's 0.5 taken back by the re-warm
    _, counted = areas(lrs, decay=0.0)
    assert counted[3] == pytest.approx(-0.75)  # without warmup_steps the warmup counts as re-warming


def test_the_fit_finds_the_law_a_curve_was_drawn_from_and_predicts_another_schedule():
    cosine = _lrs({"name": "cosine", "peak_lr": 2e-3}, 4200)
    true = AnnealingLaw(2.5, 0.8, 0.6, 30.0)  # a decay to 0.1·peak worth 0.5 nats at λ = 0.9
    curve = true.curve(cosine, warmup_steps=42)
    steps = list(range(200, 4201, 200))
    noise = np.random.default_rng(0).normal(0, 0.003, len(steps))
    law = fit(steps, [curve[s - 1] + e for s, e in zip(steps, noise)], cosine, warmup_steps=42)
    assert law.points == 21 and law.rmse < 0.004
    assert (law.alpha, law.C) == pytest.approx((0.6, 30.0), rel=0.1)
    wsd = _lrs({"name": "wsd", "peak_lr": 2e-3}, 4200)  # stable, then a 1−sqrt cooldown: a curve no fit saw
    assert law.curve(wsd, warmup_steps=42)[-1] == pytest.approx(true.curve(wsd, warmup_steps=42)[-1], abs=0.01)


def test_too_few_points_is_one_sentence_naming_the_curve():
    lrs = [1e-3] * 100
    with pytest.raises(FitError, match=r"^cv-base's held-out curve has 4 held-out point\(s\) after step 0; .*eval_every"):
        fit([0, 25, 50, 75, 100], [5.0, 4.0, 3.5, 3.2, 3.0], lrs, what="cv-base's held-out curve")


def test_a_fit_that_does_not_converge_gives_no_number(monkeypatch):
    class Failed:
        success, cost = False, 0.0
        x = np.array([1.0, 1.0, 0.5, 0.0])

    monkeypatch.setattr(loss_law, "least_squares", lambda *a, **k: Failed())
    with pytest.raises(FitError, match="did not converge on the probe; no prediction is made from it"):
        fit([20, 40, 60, 80, 100], [5.0, 4.0, 3.5, 3.2, 3.0], [1e-3] * 100, what="the probe")


def test_the_update_law_fitted_on_a_probe_predicts_the_whole_update():
    history = _lrs({"name": "cosine", "peak_lr": 2e-3}, 4200)
    parent = AnnealingLaw(2.5, 0.8, 0.6, 30.0)
    update = _lrs({"name": "cosine", "peak_lr": 2e-3, "warmup_fraction": 0.05}, 600)  # re-warm, re-decay
    # a tenth of the update, at its peak, then decayed to the update's floor over its last third (predict.probe_config)
    probe = _lrs({"name": "wsd", "peak_lr": 2e-3, "min_lr": 2e-4, "warmup_fraction": 0.0, "decay_fraction": 1 / 3,
                  "decay_shape": "linear"}, 60)
    # new data, annealing worth more than on the parent's; old data levelled off; old data still forgetting
    truths = (UpdateLaw(parent, 4.1, 2.6, 0.05, 0.02, 45.0), UpdateLaw(parent, 3.4, 3.3, 0.0, 1.0, 10.0),
              UpdateLaw(parent, 3.4, 3.9, -0.03, 0.02, 20.0))
    steps = list(range(6, 61, 6))
    for truth in truths:
        observed = truth.curve(history, probe, warmup_steps=42)
        law = fit_update(parent, truth.start, steps, [observed[s - 1] for s in steps], history, probe, warmup_steps=42)
        assert law.rmse < 1e-4 and law.points == 8  # steps 6 and 12 are the optimizer's restart (the first quarter)
        assert law.C == pytest.approx(truth.C, rel=0.05)  # each corpus's own annealing gain, read off the probe's decay
        assert law.curve(history, update, warmup_steps=42)[-1] == pytest.approx(truth.curve(history, update, warmup_steps=42)[-1], abs=0.01)
    # the re-decay lowers the loss by the corpus's annealing term
    s1, s2 = areas(np.concatenate([history, update]), warmup_steps=42)
    level = truths[1].curve(history, update, warmup_steps=42)
    assert level[-1] == pytest.approx(3.3 - 10.0 * (s2[-1] - s2[len(history) - 1]))
    # a probe at one LR shows no annealing: C is the parent's
    held = [2e-3] * 60
    flat = UpdateLaw(parent, 3.4, 3.3, 0.0, 1.0, parent.C).curve(history, held, warmup_steps=42)
    assert fit_update(parent, 3.4, steps, [flat[s - 1] for s in steps], history, held, warmup_steps=42).C == parent.C
    with pytest.raises(FitError, match=r"^the probe has 4 held-out point\(s\) after its first 25% of steps \(the optimizer's "
                                       r"restart\); the update's law needs at least 5"):
        fit_update(parent, 3.2, [0, 5, 10, 20, 30, 40, 50], [3.2, 3.5, 3.3, 3.35, 3.37, 3.38, 3.3], history, probe)


def test_a_probe_whose_fit_falls_towards_zero_gives_no_number():
    history = _lrs({"name": "cosine", "peak_lr": 2e-3}, 4200)
    parent = AnnealingLaw(2.5, 0.8, 0.6, 30.0)
    probe = [2e-3] * 60
    # a curve still falling steeply at the probe's end, with no sign of a level: the best fit puts L∞ at 0
    falling = UpdateLaw(parent, 4.0, 0.0, 1.5, 0.05, parent.C).curve(history, probe, warmup_steps=42)
    steps = list(range(6, 61, 6))
    with pytest.raises(FitError, match=r"^the update's law fitted to the probe falls towards a held-out loss of 0, which no model "
                                       r"reaches: the probe does not pin its level down"):
        fit_update(parent, 4.0, steps, [falling[s - 1] for s in steps], history, probe, warmup_steps=42)
