"""Named learning-rate schedules, as written in YAML (discriminated by `name`), with the papers' defaults.

Lengths are fractions of the run (rounded to whole steps: `round(fraction · total_steps)`), or the same
lengths in tokens (`*_tokens`, converted with the run's tokens per step). `build(total_steps)` turns a
spec into a `Schedule`, whose `lr(step)` is a pure function of the step; a checkpoint stores only
the step. Formulas and sources: docs/schedules.md and reference/recipes.md.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from renewlm.config import Config, load, validate
from renewlm.errors import ConfigError
from renewlm.optim.stages import DecayShape, Schedule, Stage

Fraction = Annotated[float, Field(ge=0, le=1)]
LR = Annotated[float, Field(ge=0)]
Tokens = Annotated[int, Field(gt=0)] | None


class _Spec(Config):
    def build(self, total_steps: int, tokens_per_step: int | None = None) -> Schedule:
        if total_steps < 1:
            raise ConfigError(f"a {self.name} schedule needs at least 1 step (got {total_steps})")
        return self._build(_Lengths(self, total_steps, tokens_per_step))

    def _check_fractions(self, *names: str) -> None:
        given = {n: getattr(self, f"{n}_fraction") for n in names}
        if sum(given.values()) > 1 + 1e-9:
            parts = " + ".join(f"{n}_fraction {v:g}" for n, v in given.items())
            raise ValueError(f"{parts} add up past the whole run; shorten them so they sum to at most 1")
        for n in names:
            if f"{n}_fraction" in self.model_fields_set and getattr(self, f"{n}_tokens", None) is not None:
                raise ValueError(f"give {n}_fraction or {n}_tokens, not both")


class _Lengths:
    """Stage lengths in steps, from fractions or tokens."""

    def __init__(self, spec: _Spec, total_steps: int, tokens_per_step: int | None):
        self.spec, self.total, self.tokens_per_step = spec, total_steps, tokens_per_step

    def __call__(self, stage: str) -> int:
        tokens = getattr(self.spec, f"{stage}_tokens", None)
        if tokens is None:
            return round(getattr(self.spec, f"{stage}_fraction") * self.total)
        if not self.tokens_per_step:
            raise ConfigError(f"{stage}_tokens needs the run's tokens per step; give {stage}_fraction instead")
        return round(tokens / self.tokens_per_step)

    def check(self, **steps: int) -> None:
        if sum(steps.values()) > self.total:
            parts = " + ".join(f"{k} {v}" for k, v in steps.items())
            raise ConfigError(
                f"the {self.spec.name} schedule's stages ({parts} steps) add up past the run's {self.total} steps; "
                f"shorten them or lengthen the run"
            )


def _floor_below_peak(floor: float, peak: float, floor_name: str, peak_name: str) -> None:
    if floor > peak:
        raise ValueError(f"{floor_name} {floor:g} is above {peak_name} {peak:g}; the floor must not exceed the peak")


class Cosine(_Spec):
    """Re-warm and re-decay (Ibrahim et al. 2024): linear warmup, then cosine to the floor."""

    name: Literal["cosine"]
    peak_lr: LR = Field(description="LR at the end of the warmup.")
    min_lr: LR | None = Field(None, description="Floor reached at the end of the run (default 0.1·peak_lr).")
    warmup_fraction: Fraction = Field(0.01, description="Share of the run spent warming up (the re-warm).")
    warmup_tokens: Tokens = Field(None, description="The warmup in tokens instead of a fraction.")
    start_lr: LR = Field(0.0, description="LR the warmup starts from.")

    @model_validator(mode="after")
    def _check(self) -> Cosine:
        self._check_fractions("warmup")
        _floor_below_peak(self.floor, self.peak_lr, "min_lr", "peak_lr")
        return self

    @property
    def floor(self) -> float:
        return 0.1 * self.peak_lr if self.min_lr is None else self.min_lr

    def _build(self, n: _Lengths) -> Schedule:
        w = n("warmup")
        n.check(warmup=w)
        return Schedule(
            [Stage("warmup", 0, w, self.start_lr, self.peak_lr), Stage("decay", w, n.total, self.peak_lr, self.floor, "cosine")],
            n.total, self.floor,
        )


class WSD(_Spec):
    """Warmup-stable-decay (MiniCPM; Hägele et al. 2024): warmup, constant peak, decay over the last part."""

    name: Literal["wsd"]
    peak_lr: LR = Field(description="LR of the stable stage.")
    min_lr: LR = Field(0.0, description="Floor reached at the end of the decay.")
    warmup_fraction: Fraction = Field(0.01, description="Share of the run spent warming up.")
    warmup_tokens: Tokens = Field(None, description="The warmup in tokens instead of a fraction.")
    decay_fraction: Fraction = Field(0.2, description="Share of the run spent decaying (10–20% is enough).")
    decay_tokens: Tokens = Field(None, description="The decay in tokens instead of a fraction.")
    decay_shape: DecayShape = Field("1-sqrt", description="linear, cosine, 1-sqrt (best), 1-square or exp.")
    start_lr: LR = Field(0.0, description="LR the warmup starts from.")

    @model_validator(mode="after")
    def _check(self) -> WSD:
        self._check_fractions("warmup", "decay")
        _floor_below_peak(self.min_lr, self.peak_lr, "min_lr", "peak_lr")
        if self.decay_shape == "exp" and self.min_lr <= 0:
            raise ValueError("decay_shape exp needs min_lr > 0 (an exponential never reaches 0); set min_lr")
        return self

    def _build(self, n: _Lengths) -> Schedule:
        w, d = n("warmup"), n("decay")
        n.check(warmup=w, decay=d)
        return Schedule(
            [
                Stage("warmup", 0, w, self.start_lr, self.peak_lr),
                Stage("stable", w, n.total - d, self.peak_lr, self.peak_lr),
                Stage("decay", n.total - d, n.total, self.peak_lr, self.min_lr, self.decay_shape),
            ],
            n.total, self.min_lr,
        )


class Infinite(_Spec):
    """Ibrahim et al. 2024's infinite schedule: warmup, cooldown to a constant LR held as long as data
    comes, and an exponential anneal only when a release is cut."""

    name: Literal["infinite"]
    peak_lr: LR = Field(description="LR at the end of the warmup.")
    min_lr: LR = Field(description="Floor the anneal reaches (must be > 0 when anneal_fraction > 0).")
    const_lr: LR | None = Field(None, description="LR of the constant stage (default (peak_lr + min_lr)/2).")
    warmup_fraction: Fraction = Field(0.01, description="Share of the run spent warming up.")
    warmup_tokens: Tokens = Field(None, description="The warmup in tokens instead of a fraction.")
    cooldown_shape: Literal["cosine", "inv-sqrt"] = Field("cosine", description="Shape of the cooldown to const_lr.")
    cooldown_fraction: Fraction = Field(0.6, description="Share of the run spent cooling down to const_lr.")
    cooldown_tokens: Tokens = Field(None, description="The cooldown in tokens instead of a fraction.")
    timescale: float = Field(10.0, gt=0, description="α of the inverse-sqrt cooldown.")
    anneal_fraction: Fraction = Field(0.0, description="Share of the run annealed at the end: 0 on the main path, > 0 for a release.")
    anneal_tokens: Tokens = Field(None, description="The anneal in tokens instead of a fraction.")
    start_lr: LR = Field(0.0, description="LR the warmup starts from.")

    @model_validator(mode="after")
    def _check(self) -> Infinite:
        self._check_fractions("warmup", "cooldown", "anneal")
        _floor_below_peak(self.min_lr, self.peak_lr, "min_lr", "peak_lr")
        _floor_below_peak(self.constant, self.peak_lr, "const_lr", "peak_lr")
        _floor_below_peak(self.min_lr, self.constant, "min_lr", "const_lr")
        if (self.anneal_fraction > 0 or self.anneal_tokens) and self.min_lr <= 0:
            raise ValueError("the exponential anneal needs min_lr > 0 (it never reaches 0); set min_lr")
        return self

    @property
    def constant(self) -> float:
        return (self.peak_lr + self.min_lr) / 2 if self.const_lr is None else self.const_lr

    def _build(self, n: _Lengths) -> Schedule:
        w, c, a = n("warmup"), n("cooldown"), n("anneal")
        n.check(warmup=w, cooldown=c, anneal=a)
        const = self.constant
        return Schedule(
            [
                Stage("warmup", 0, w, self.start_lr, self.peak_lr),
                Stage("cooldown", w, w + c, self.peak_lr, const, self.cooldown_shape, self.timescale),
                Stage("constant", w + c, n.total - a, const, const),
                Stage("anneal", n.total - a, n.total, const, self.min_lr, "exp"),
            ],
            n.total, self.min_lr if a else const,
        )


class Reuse(_Spec):
    """Parmar et al. 2024: no warmup; cosine from the pretraining floor to 1/100 of it; the data blend
    switches when the LR reaches `switch_at_lr_ratio` of its start (event `switch`)."""

    name: Literal["reuse"]
    start_lr: LR = Field(description="The pretraining minimum LR, where continued training starts.")
    min_lr: LR | None = Field(None, description="Floor at the end (default start_lr / 100).")
    switch_at_lr_ratio: float = Field(0.2, gt=0, lt=1, description="Event `switch` is the first step with LR ≤ this × start_lr.")

    @model_validator(mode="after")
    def _check(self) -> Reuse:
        _floor_below_peak(self.floor, self.start_lr, "min_lr", "start_lr")
        if self.switch_at_lr_ratio * self.start_lr < self.floor:
            raise ValueError(f"switch_at_lr_ratio {self.switch_at_lr_ratio:g} puts the switch below the floor; raise it")
        return self

    @property
    def floor(self) -> float:
        return self.start_lr / 100 if self.min_lr is None else self.min_lr

    def _build(self, n: _Lengths) -> Schedule:
        a, b, target = self.start_lr, self.floor, self.switch_at_lr_ratio * self.start_lr
        # Solve b + (a − b)(1 + cos πx)/2 = target for x; the switch is the first step at or past it.
        x = math.acos(2 * (target - b) / (a - b) - 1) / math.pi if a > b else 0.0
        switch = min(n.total, math.ceil(x * n.total - 1e-9))
        return Schedule([Stage("decay", 0, n.total, a, b, "cosine")], n.total, b, {"switch": switch})


class Constant(_Spec):
    """One LR throughout: the "no re-warm" baseline (Ibrahim et al. 2024)."""

    name: Literal["constant"]
    lr: LR = Field(description="The learning rate.")

    def _build(self, n: _Lengths) -> Schedule:
        return Schedule([Stage("constant", 0, n.total, self.lr, self.lr)], n.total, self.lr)


class Branch(_Spec):
    """Path switching (Wang et al. 2024): a release branches off the main path at the LR it stands at,
    holds it, then fully decays over the last `decay_fraction` (a WSD cooldown from a stable checkpoint)."""

    name: Literal["branch"]
    start_lr: LR = Field(description="The LR the main path is at where the branch starts.")
    min_lr: LR = Field(0.0, description="Floor at the end of the decay.")
    decay_fraction: Fraction = Field(0.1, description="Share of the run spent decaying (MiniCPM: 10% is enough).")
    decay_tokens: Tokens = Field(None, description="The decay in tokens instead of a fraction.")
    decay_shape: DecayShape = Field("1-sqrt", description="As in wsd.")

    @model_validator(mode="after")
    def _check(self) -> Branch:
        self._check_fractions("decay")
        _floor_below_peak(self.min_lr, self.start_lr, "min_lr", "start_lr")
        if self.decay_shape == "exp" and self.min_lr <= 0:
            raise ValueError("decay_shape exp needs min_lr > 0 (an exponential never reaches 0); set min_lr")
        return self

    def _build(self, n: _Lengths) -> Schedule:
        d = n("decay")
        n.check(decay=d)
        return Schedule(
            [
                Stage("stable", 0, n.total - d, self.start_lr, self.start_lr),
                Stage("decay", n.total - d, n.total, self.start_lr, self.min_lr, self.decay_shape),
            ],
            n.total, self.min_lr,
        )


ScheduleSpec = Annotated[Union[Cosine, WSD, Infinite, Reuse, Constant, Branch], Field(discriminator="name")]


def validate_schedule(data: object, where: str = "schedule") -> Cosine | WSD | Infinite | Reuse | Constant | Branch:
    return validate(ScheduleSpec, data, where)


def load_schedule(path) -> Cosine | WSD | Infinite | Reuse | Constant | Branch:
    return load(ScheduleSpec, path)


def set_lr(optimizer, lr: float) -> None:
    """Drive the optimizer: every param group gets the schedule's LR for this step."""
    for group in optimizer.param_groups:
        group["lr"] = lr
