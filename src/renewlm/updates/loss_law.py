"""A run's held-out loss as a function of its learning-rate schedule, fitted to a logged curve.

Tissue et al. 2024 ("Scaling law with learning rate annealing", arXiv:2408.11029):

    L(s) = L0 + A·S1(s)^(−α) − C·S2(s)

with S1 the forward area (the sum of the LR over the steps taken: how far the weights have moved) and S2
the annealing area: the sum of m_i = λ·m_(i−1) + (η_(i−1) − η_i), each step's LR drop carried on with
momentum λ (0.999 in the paper; `DECAY` here), so a decay keeps lowering the loss for a while after the LR
has settled and a re-warm (a negative drop) raises it. The warmup from random weights is not an annealing: its
rises count in S1 only (the paper leaves the warmup out of S2). Four numbers fitted on one curve predict the
curve of another schedule over the same data; `predict` says what they give for a schedule not yet run.

An update changes the data as well: `UpdateLaw` is the update's own curve on one corpus, the parent's exponent
kept, its level, scale and annealing coefficient fitted to a probe of the update that ends in a short decay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.signal import lfilter

from renewlm.errors import InputError

# λ. The paper's 0.999 carries a decay's gain over a thousand steps; the converged base's own curve fits 0.99, 0.95
# and 0.9 alike and better (0.0035–0.0036 nats root mean square, 0.0086 at 0.999: docs/prediction.md); of those the
# shortest memory is the one a probe's few decay steps can measure and a short update's re-decay can realise.
DECAY = 0.9
FEWEST_POINTS = 5  # four parameters and at least one point to spare
_ALPHAS = (0.2, 0.5, 1.0)  # starting exponents: the fit is run from each and the best kept
LEVEL_FLOOR = 1e-3  # nats: an update's fitted level at its bound of 0 is no level (text's loss never falls to 0)
RESTART_SHARE = 0.25  # of a probe's steps: a fresh optimizer's transient at the peak LR, left out of the update's fit


class FitError(InputError):
    """A curve the law cannot be fitted to (too few points, or a fit that did not converge)."""


def areas(lrs: Sequence[float], *, warmup_steps: int = 0, decay: float = DECAY) -> tuple[np.ndarray, np.ndarray]:
    """S1 and S2 after each step: element s − 1 holds the areas once steps 0 … s − 1 have run at `lrs`.

    `warmup_steps`: the first steps, a warmup from random weights, whose LR rises count in S1 only."""
    lr = np.asarray(lrs, dtype=np.float64)
    drops = np.zeros_like(lr)
    drops[1:] = lr[:-1] - lr[1:]
    drops[:warmup_steps] = 0.0
    momentum = lfilter([1.0], [1.0, -decay], drops)  # m_i = λ·m_(i−1) + drop_i
    return np.cumsum(lr), np.cumsum(momentum)


@dataclass(frozen=True)
class AnnealingLaw:
    """L = L0 + A·S1^(−α) − C·S2, and how well it fits the points it was fitted to."""

    L0: float
    A: float
    alpha: float
    C: float
    decay: float = DECAY
    points: int = 0
    rmse: float = 0.0  # of the fitted points, in nats

    def loss(self, s1: np.ndarray | float, s2: np.ndarray | float) -> np.ndarray:
        return self.L0 + self.A * np.power(s1, -self.alpha) - self.C * np.asarray(s2)

    def curve(self, lrs: Sequence[float], *, warmup_steps: int = 0) -> np.ndarray:
        """The predicted loss after each step of a run at `lrs` (its whole history, first step first)."""
        s1, s2 = areas(lrs, warmup_steps=warmup_steps, decay=self.decay)
        return self.loss(s1, s2)

    def as_dict(self) -> dict:
        return asdict(self)


def fit(steps: Sequence[int], losses: Sequence[float], lrs: Sequence[float], *, warmup_steps: int = 0,
        decay: float = DECAY, what: str = "the curve") -> AnnealingLaw:
    """The law fitted to held-out `losses` measured after `steps` steps of a run whose step i ran at `lrs[i]`.

    Least squares in the loss, bounded (0 ≤ L0 ≤ the highest point, A ≥ 0, 0.01 ≤ α ≤ 3, C ≥ 0), started from several exponents.
    FitError, naming `what`, when fewer than five points follow a step, or when no start converges."""
    pts = [(s, loss) for s, loss in zip(steps, losses) if 0 < s <= len(lrs) and math.isfinite(loss) and loss > 0]
    if len(pts) < FEWEST_POINTS:
        raise FitError(f"{what} has {len(pts)} held-out point(s) after step 0; the loss law needs at least {FEWEST_POINTS} "
                       "(set eval_every when it trains)")
    s1_all, s2_all = areas(lrs, warmup_steps=warmup_steps, decay=decay)
    index = np.array([s for s, _ in pts]) - 1
    s1, s2, y = s1_all[index], s2_all[index], np.array([loss for _, loss in pts])
    if not np.all(s1 > 0):
        raise FitError(f"{what} has points where no step has moved the weights yet (the LR was 0); drop them")

    def residual(x: np.ndarray) -> np.ndarray:
        return x[0] + x[1] * np.power(s1, -x[2]) - x[3] * s2 - y

    best = None
    for alpha in _ALPHAS:
        first = y.min() * 0.9
        a0 = max((y[0] - first) * s1[0] ** alpha, 1e-6)
        result = least_squares(residual, [first, a0, alpha, 0.0], bounds=([0.0, 0.0, 0.01, 0.0], [y.max(), np.inf, 3.0, np.inf]),
                               x_scale="jac", max_nfev=5000)
        if result.success and np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        raise FitError(f"the loss law did not converge on {what}; no prediction is made from it")
    rmse = float(np.sqrt(np.mean(best.fun**2)))
    return AnnealingLaw(*map(float, best.x), decay=decay, points=len(pts), rmse=rmse)


@dataclass(frozen=True)
class UpdateLaw:
    """An update's held-out loss on one corpus after s of its steps, a learning curve of its own:

        L(s) = L∞ + A·(S1u(s) + s0)^(−α) − C·(S2(s) − S2(parent))

    S1u is the update's own forward area and S2 the annealing area carried on over the lineage (a re-warm
    raises the loss, a re-decay lowers it); α is the parent's law's (how the loss answers more area). L∞, A,
    s0 > 0 (the area the corpus's curve has, in effect, behind it at the update's start) and C ≥ 0 (what an
    annealing is worth on this corpus: a re-decay's gain differs between the new data and the old) are fitted
    per corpus on a probe that ends in a decay; a probe at one LR shows no annealing, and C is then the
    parent's. On the new data the curve falls (A > 0) to L∞; on an old corpus whose loss is still rising A < 0,
    and the curve rises towards L∞ at the pace the parent's exponent gives (the forgetting still to come); a
    level curve has A near 0."""

    parent: AnnealingLaw
    start: float  # the parent's loss on this corpus: the update's step-0 evaluation
    L_inf: float
    A: float
    s0: float
    C: float
    points: int = 0
    rmse: float = 0.0

    def curve(self, history_lrs: Sequence[float], update_lrs: Sequence[float], *, warmup_steps: int = 0) -> np.ndarray:
        """The predicted loss after each step of the update (`history_lrs`: the parent's lineage's steps)."""
        moved, annealed = _update_areas(self.parent, history_lrs, update_lrs, warmup_steps)
        return _update_curve(self.parent.alpha, (self.L_inf, self.A, self.s0, self.C), moved, annealed)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "parent"}


def _update_areas(parent: AnnealingLaw, history_lrs, update_lrs, warmup_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """After each of the update's steps: its own forward area, and the annealing area it added to the lineage's."""
    n = len(history_lrs)
    if n == 0:
        raise ValueError("an update is predicted from a parent that has trained: its history has no step")
    s1, s2 = areas(np.concatenate([history_lrs, update_lrs]), warmup_steps=warmup_steps, decay=parent.decay)
    return s1[n:] - s1[n - 1], s2[n:] - s2[n - 1]


def _update_curve(alpha: float, x: Sequence[float], moved: np.ndarray, annealed: np.ndarray) -> np.ndarray:
    l_inf, a, s0, c = x
    return l_inf + a * np.power(moved + s0, -alpha) - c * annealed


def fit_update(parent: AnnealingLaw, start: float, steps: Sequence[int], losses: Sequence[float], history_lrs: Sequence[float],
               update_lrs: Sequence[float], *, warmup_steps: int = 0, what: str = "the probe") -> UpdateLaw:
    """The update's law on one corpus, fitted to a probe's held-out `losses` after `steps` of its steps (the probe
    ran at `update_lrs`), the parent's law and loss on the corpus given. The points of the probe's first
    `RESTART_SHARE` of steps are left out: the optimizer's restart, which no term describes. C is fitted where the
    probe's LR falls after the restart (its decay), else held at the parent's. FitError as for `fit`, with at least
    one point more than the parameters fitted."""
    after = RESTART_SHARE * len(update_lrs)
    pts = [(s, loss) for s, loss in zip(steps, losses) if after < s <= len(update_lrs) and math.isfinite(loss) and loss > 0]
    lrs = np.asarray(update_lrs, dtype=float)
    anneals = bool(np.any(np.diff(lrs[int(after):]) < 0))
    needed = 5 if anneals else 4
    if len(pts) < needed:
        raise FitError(f"{what} has {len(pts)} held-out point(s) after its first {RESTART_SHARE:.0%} of steps (the optimizer's "
                       f"restart); the update's law needs at least {needed} (predict a longer update, or fewer candidates at once)")
    index, y = np.array([s for s, _ in pts]) - 1, np.array([loss for _, loss in pts])
    moved, annealed = _update_areas(parent, history_lrs, update_lrs, warmup_steps)
    moved, annealed, first_area = moved[index], annealed[index], float(moved[index[0]])

    def residual(x: np.ndarray) -> np.ndarray:
        return _update_curve(parent.alpha, x if anneals else (*x, parent.C), moved, annealed) - y

    best, span = None, max(float(y.max() - y.min()), 1e-3)
    low, high = [0.0, -np.inf, 1e-12, 0.0], [2 * y.max(), np.inf, np.inf, np.inf]
    size = 4 if anneals else 3
    for s0 in (0.1 * first_area, first_area, 10 * first_area):
        for sign in (1.0, -1.0):  # a falling curve (the new data's) and a rising one (forgetting)
            level = y.min() - span if sign > 0 else y.max() + span
            guess = [max(level, 0.0), sign * span * s0**parent.alpha, s0, parent.C][:size]
            result = least_squares(residual, guess, bounds=(low[:size], high[:size]), x_scale="jac", max_nfev=5000)
            if result.success and np.all(np.isfinite(result.x)) and (best is None or result.cost < best.cost):
                best = result
    if best is None:
        raise FitError(f"the update's law did not converge on {what}; no prediction is made from it")
    if best.x[0] <= LEVEL_FLOOR:
        raise FitError(f"the update's law fitted to {what} falls towards a held-out loss of 0, which no model reaches: the probe "
                       "does not pin its level down, and no prediction is made from it (predict a longer update, so its probe is longer)")
    x = [*map(float, best.x), *([] if anneals else [parent.C])]
    return UpdateLaw(parent, start, *x, points=len(pts), rmse=float(np.sqrt(np.mean(best.fun**2))))
