"""Named learning-rate schedules, as written in YAML (discriminated by `name`), with the papers' defaults.

Lengths are fractions of the run, rounded to whole steps (`round(fraction · total_steps)`, Python's
round: halves go to the even step), or the same lengths in tokens (`*_tokens`, converted with the
run's tokens per step and rounded the same way). `build(total_steps)` turns a spec into a `Schedule`,
whose `lr(step)` is a pure function of the step; a checkpoint stores only the step. Each spec also says
its `peak`, its `floor` and whether it `decays()`, so a run config or an update asks it rather than
reading its fields by name.
Formulas and sources: docs/schedules.md and reference/recipes.md.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from renewlm.config import Config, load, validate
from renewlm.errors import ConfigError
from renewlm.optim.stages import CooldownShape, DecayShape, Schedule, Span, Stage

__all__ = ["SCHEDULES", "ScheduleSpec", "Schedule", "Span", "load_schedule", "validate_schedule", "set_lr"]

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
LR = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # a floor may be 0
TopLR = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # the LR a schedule starts from or peaks at
# Token counts are often written 2e9; YAML reads that as a float, so a whole float counts as an int.
Tokens = Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v), Field(ge=0)] | None


def _length(fraction: float, tokens: int | None) -> float:
    """A stage's given length: in tokens when given (they replace the fraction), else its fraction."""
    return fraction if tokens is None else tokens


class _Spec(Config):
    @property
    @abstractmethod
    def peak(self) -> float:
        """The LR the schedule starts from or rises to: its highest."""

    @property
    @abstractmethod
    def floor(self) -> float:
        """The lowest LR the schedule is written to reach: its `min_lr`, or the default that stands for it."""

    @abstractmethod
    def decays(self) -> str | None:
        """Why the schedule lowers the LR from its peak (a clause, e.g. "has a decay stage"), or None when it holds it."""

    def build(self, total_steps: int, tokens_per_step: int | None = None) -> Schedule:
        """The schedule over a run of `total_steps` optimizer steps; ConfigError if it does not fit."""
        if total_steps < 1:
            raise ConfigError(f"a {self.name} schedule needs a run of at least 1 step (got {total_steps}); give more steps")
        if tokens_per_step is not None and tokens_per_step < 1:
            raise ConfigError(f"tokens per step must be at least 1 (got {tokens_per_step}); check the batch size")
        return self._build(_Lengths(self, total_steps, tokens_per_step))

    def _check_fractions(self, *names: str) -> None:
        for n in names:
            if f"{n}_fraction" in self.model_fields_set and getattr(self, f"{n}_tokens") is not None:
                raise ValueError(f"give {n}_fraction or {n}_tokens, not both")
        # Only fractions in use count; lengths in tokens are checked against the run in build().
        given = {n: getattr(self, f"{n}_fraction") for n in names if getattr(self, f"{n}_tokens") is None}
        if sum(given.values()) > 1 + 1e-9:
            parts = " + ".join(f"{n}_fraction {v:g}" for n, v in given.items())
            raise ValueError(f"{parts} add up past the whole run; shorten them so they sum to at most 1")


class _Lengths:
    """Stage lengths in steps, from fractions or tokens."""

    def __init__(self, spec: _Spec, total_steps: int, tokens_per_step: int | None):
        self.spec, self.total, self.tokens_per_step = spec, total_steps, tokens_per_step

    def _exact(self, stage: str) -> float:
        tokens = getattr(self.spec, f"{stage}_tokens")
        if tokens is None:
            return getattr(self.spec, f"{stage}_fraction") * self.total
        if self.tokens_per_step is None:
            raise ConfigError(
                f"{stage}_tokens needs the run's tokens per step (--tokens-per-step, or the run's batch); "
                f"give it or use {stage}_fraction instead"
            )
        return tokens / self.tokens_per_step

    def __call__(self, *stages: str) -> list[int]:
        """Each stage's length, round(exact steps); where rounding alone pushes the sum past the run
        (e.g. two halves of 3 steps), the stage rounded up the most gives a step back."""
        exact = [self._exact(s) for s in stages]
        if sum(exact) > self.total + 1e-9:
            parts = " + ".join(f"{s} {e:g}" for s, e in zip(stages, exact))
            raise ConfigError(
                f"the {self.spec.name} schedule's stages ({parts} steps) add up past the run's {self.total} steps; "
                f"shorten them or lengthen the run"
            )
        steps = [round(e) for e in exact]
        while sum(steps) > self.total:
            i = max(range(len(steps)), key=lambda k: steps[k] - exact[k])
            steps[i] -= 1
        return steps


def _not_above(low: float, high: float, low_name: str, high_name: str) -> None:
    if low > high:
        raise ValueError(f"{low_name} {low:g} is above {high_name} {high:g}; lower {low_name} or raise {high_name}")


class Cosine(_Spec):
    """Re-warm and re-decay (Ibrahim et al. 2024): linear warmup, then cosine to the floor."""

    name: Literal["cosine"]
    peak_lr: TopLR = Field(description="LR at the end of the warmup.")
    min_lr: LR | None = Field(None, description="Floor reached at the end of the run (default 0.1·peak_lr).")
    warmup_fraction: Fraction = Field(0.01, description="Share of the run spent warming up (the re-warm).")
    warmup_tokens: Tokens = Field(None, description="The warmup in tokens instead of a fraction.")
    start_lr: LR = Field(0.0, description="LR the warmup starts from.")

    @model_validator(mode="after")
    def _check(self) -> Cosine:
        self._check_fractions("warmup")
        _not_above(self.floor, self.peak_lr, "min_lr", "peak_lr")
        _not_above(self.start_lr, self.peak_lr, "start_lr", "peak_lr")
        return self

    @property
    def peak(self) -> float:
        return self.peak_lr

    @property
    def floor(self) -> float:
        return 0.1 * self.peak_lr if self.min_lr is None else self.min_lr

    def decays(self) -> str | None:
        return "decays by design"

    def _build(self, n: _Lengths) -> Schedule:
        (w,) = n("warmup")
        return Schedule(
            [Stage("warmup", 0, w, self.start_lr, self.peak_lr, "warmup"), Stage("decay", w, n.total, self.peak_lr, self.floor, "cosine")],
            n.total, self.floor,
        )


class _EndsInDecay:
    """The floor and the decay of a schedule whose last stage decays to `min_lr` (wsd, branch)."""

    @property
    def floor(self) -> float:
        return self.min_lr

    def decays(self) -> str | None:
        return "has a decay stage" if _length(self.decay_fraction, self.decay_tokens) > 0 else None


class WSD(_EndsInDecay, _Spec):
    """Warmup-stable-decay (MiniCPM; Hägele et al. 2024): warmup, constant peak, decay over the last part."""

    name: Literal["wsd"]
    peak_lr: TopLR = Field(description="LR of the stable stage.")
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
        _not_above(self.min_lr, self.peak_lr, "min_lr", "peak_lr")
        if self.decay_shape == "exp" and self.min_lr <= 0:
            raise ValueError("decay_shape exp needs min_lr > 0 (an exponential never reaches 0); set min_lr")
        _not_above(self.start_lr, self.peak_lr, "start_lr", "peak_lr")
        return self

    @property
    def peak(self) -> float:
        return self.peak_lr

    def _build(self, n: _Lengths) -> Schedule:
        w, d = n("warmup", "decay")
        return Schedule(
            [
                Stage("warmup", 0, w, self.start_lr, self.peak_lr, "warmup"),
                Stage("stable", w, n.total - d, self.peak_lr, self.peak_lr),
                Stage("decay", n.total - d, n.total, self.peak_lr, self.min_lr, self.decay_shape),
            ],
            n.total, self.min_lr,
        )


class Infinite(_Spec):
    """Ibrahim et al. 2024's infinite schedule: warmup, cooldown to a constant LR held as long as data
    comes, and an exponential anneal only when a release is cut."""

    name: Literal["infinite"]
    peak_lr: TopLR = Field(description="LR at the end of the warmup.")
    min_lr: LR = Field(description="Floor the anneal reaches (must be > 0 when anneal_fraction > 0).")
    const_lr: LR | None = Field(None, description="LR of the constant stage (default (peak_lr + min_lr)/2).")
    warmup_fraction: Fraction = Field(0.01, description="Share of the run spent warming up.")
    warmup_tokens: Tokens = Field(None, description="The warmup in tokens instead of a fraction.")
    cooldown_shape: CooldownShape = Field("cosine", description="Shape of the cooldown to const_lr.")
    cooldown_fraction: Fraction = Field(0.6, description="Share of the run spent cooling down to const_lr.")
    cooldown_tokens: Tokens = Field(None, description="The cooldown in tokens instead of a fraction.")
    timescale: float = Field(10.0, gt=0, allow_inf_nan=False, description="α of the inverse-sqrt cooldown.")
    anneal_fraction: Fraction = Field(0.0, description="Share of the run annealed at the end: 0 on the main path, > 0 for a release.")
    anneal_tokens: Tokens = Field(None, description="The anneal in tokens instead of a fraction.")
    start_lr: LR = Field(0.0, description="LR the warmup starts from.")

    @model_validator(mode="after")
    def _check(self) -> Infinite:
        self._check_fractions("warmup", "cooldown", "anneal")
        _not_above(self.min_lr, self.peak_lr, "min_lr", "peak_lr")
        _not_above(self.constant, self.peak_lr, "const_lr", "peak_lr")
        _not_above(self.min_lr, self.constant, "min_lr", "const_lr")
        if self.decays() and self.min_lr <= 0:
            raise ValueError("the exponential anneal needs min_lr > 0 (it never reaches 0); set min_lr")
        _not_above(self.start_lr, self.peak_lr, "start_lr", "peak_lr")
        return self

    @property
    def constant(self) -> float:
        return (self.peak_lr + self.min_lr) / 2 if self.const_lr is None else self.const_lr

    @property
    def peak(self) -> float:
        return self.peak_lr

    @property
    def floor(self) -> float:
        """The anneal's floor, also on a main path that never anneals to it (which ends on `constant`)."""
        return self.min_lr

    def decays(self) -> str | None:
        return "has an anneal stage" if _length(self.anneal_fraction, self.anneal_tokens) > 0 else None

    def _build(self, n: _Lengths) -> Schedule:
        w, c, a = n("warmup", "cooldown", "anneal")
        const = self.constant
        return Schedule(
            [
                Stage("warmup", 0, w, self.start_lr, self.peak_lr, "warmup"),
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
    start_lr: TopLR = Field(description="The pretraining minimum LR, where continued training starts.")
    min_lr: LR | None = Field(None, description="Floor at the end (default start_lr / 100).")
    switch_at_lr_ratio: float = Field(0.2, gt=0, lt=1, description="Event `switch` is the first step with LR ≤ this × start_lr.")

    @model_validator(mode="after")
    def _check(self) -> Reuse:
        _not_above(self.floor, self.start_lr, "min_lr", "start_lr")
        if self.switch_at_lr_ratio * self.start_lr < self.floor:
            raise ValueError(f"switch_at_lr_ratio {self.switch_at_lr_ratio:g} puts the switch below the floor; raise it")
        return self

    @property
    def peak(self) -> float:
        return self.start_lr

    @property
    def floor(self) -> float:
        return self.start_lr / 100 if self.min_lr is None else self.min_lr

    def decays(self) -> str | None:
        return "decays by design"

    def _build(self, n: _Lengths) -> Schedule:
        a, b, target = self.start_lr, self.floor, self.switch_at_lr_ratio * self.start_lr
        decay = Stage("decay", 0, n.total, a, b, "cosine")
        # Solve b + (a − b)(1 + cos πx)/2 = target: x = 0.711 for a /100 floor and a /5 switch.
        x = math.acos(2 * (target - b) / (a - b) - 1) / math.pi if a > b else 0.0
        switch = min(n.total, math.ceil(x * n.total))
        # `switch` is the first step that runs at LR ≤ target; nudge it past float rounding of x·T.
        lr = lambda t: decay.lr(t) if t < n.total else b  # noqa: E731
        while switch > 0 and lr(switch - 1) <= target:
            switch -= 1
        while switch < n.total and lr(switch) > target:
            switch += 1
        return Schedule([decay], n.total, b, {"switch": switch})


class Constant(_Spec):
    """One LR throughout: the "no re-warm" baseline (Ibrahim et al. 2024)."""

    name: Literal["constant"]
    lr: TopLR = Field(description="The learning rate.")

    @property
    def peak(self) -> float:
        return self.lr

    floor = peak  # one LR throughout: the peak is the floor

    def decays(self) -> str | None:
        return None

    def _build(self, n: _Lengths) -> Schedule:
        return Schedule([Stage("constant", 0, n.total, self.lr, self.lr)], n.total, self.lr)


class Branch(_EndsInDecay, _Spec):
    """Path switching (Wang et al. 2024): a release branches off the main path at the LR it stands at,
    holds it, then fully decays over the last `decay_fraction` (a WSD cooldown from a stable checkpoint)."""

    name: Literal["branch"]
    start_lr: TopLR = Field(description="The LR the main path is at where the branch starts.")
    min_lr: LR = Field(0.0, description="Floor at the end of the decay.")
    decay_fraction: Fraction = Field(0.1, description="Share of the run spent decaying (MiniCPM: 10% is enough).")
    decay_tokens: Tokens = Field(None, description="The decay in tokens instead of a fraction.")
    decay_shape: DecayShape = Field("1-sqrt", description="As in wsd.")

    @model_validator(mode="after")
    def _check(self) -> Branch:
        self._check_fractions("decay")
        _not_above(self.min_lr, self.start_lr, "min_lr", "start_lr")
        if self.decay_shape == "exp" and self.min_lr <= 0:
            raise ValueError("decay_shape exp needs min_lr > 0 (an exponential never reaches 0); set min_lr")
        return self

    @property
    def peak(self) -> float:
        return self.start_lr

    def _build(self, n: _Lengths) -> Schedule:
        (d,) = n("decay")
        return Schedule(
            [
                Stage("stable", 0, n.total - d, self.start_lr, self.start_lr),
                Stage("decay", n.total - d, n.total, self.start_lr, self.min_lr, self.decay_shape),
            ],
            n.total, self.min_lr,
        )


# Every schedule, once: the YAML union is built from this tuple, so a new schedule is one class added here.
SCHEDULES = (Cosine, WSD, Infinite, Reuse, Constant, Branch)
ScheduleSpec = Annotated[Union[SCHEDULES], Field(discriminator="name")]


def validate_schedule(data: object, where: str = "schedule") -> _Spec:
    """A schedule spec from a dict (e.g. a run YAML's `schedule:`); ConfigError naming `where` on bad input."""
    return validate(ScheduleSpec, data, where)


def load_schedule(path: str | Path) -> _Spec:
    """A schedule spec from a YAML file (the file is the spec); ConfigError on bad input."""
    return load(ScheduleSpec, path)


def set_lr(optimizer, lr: float) -> None:
    """Drive the optimizer: every param group gets the schedule's LR for this step, times its `lr_scale`
    where it has one (the embeddings' `embedding_lr_scale`)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
