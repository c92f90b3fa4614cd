"""Stages of a learning-rate schedule and the chain of them that a run follows.

A stage runs from step `start` (inclusive) to `end` (exclusive) and goes from LR `a` towards LR `b`
along a shape of x = (step − start) / (end − start) in [0, 1). At its last step it has not quite
reached `b`; the next stage (or the end of the run, `lr(total_steps)`) starts there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

DecayShape = Literal["linear", "cosine", "1-sqrt", "1-square", "exp"]
CooldownShape = Literal["cosine", "inv-sqrt"]


def decay(shape: str, a: float, b: float, x: float, timescale: float = 10.0) -> float:
    """LR at fraction x of a decay from a to b."""
    if shape == "linear":
        return a + (b - a) * x
    if shape == "cosine":
        return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * x))
    if shape == "1-sqrt":  # Hägele et al. 2024: the best WSD cooldown
        return b + (a - b) * (1.0 - math.sqrt(x))
    if shape == "1-square":
        return b + (a - b) * (1.0 - x * x)
    if shape == "exp":  # Ibrahim et al. 2024's anneal a·(b/a)^x; callers make sure b > 0
        return a * (b / a) ** x
    if shape == "inv-sqrt":  # Ibrahim et al. 2024's cooldown: h(x) = 1/√(1+αx) − 1, normalised by h(1)
        h1 = 1.0 / math.sqrt(1.0 + timescale) - 1.0
        return a + (b - a) * (1.0 / math.sqrt(1.0 + timescale * x) - 1.0) / h1
    raise ValueError(f"unknown decay shape {shape!r}")


@dataclass(frozen=True)
class Stage:
    """One piece of a schedule. `shape` is "warmup", "constant" or a decay shape."""

    name: str
    start: int
    end: int
    a: float  # LR at the stage's first step (for a warmup: the LR it starts from)
    b: float  # LR the stage heads for, reached at `end`
    shape: str = "constant"
    timescale: float = 10.0  # α of the inv-sqrt shape

    def lr(self, step: int) -> float:
        n = self.end - self.start
        if self.shape == "warmup":
            # The first warmup step already moves: step t runs at a + (b − a)·(t+1)/n, so the last
            # warmup step runs at the peak and no step is wasted at LR 0 (as nanoGPT/litgpt do).
            return self.a + (self.b - self.a) * (step - self.start + 1) / n
        if self.shape == "constant" or self.a == self.b:
            return self.a
        return decay(self.shape, self.a, self.b, (step - self.start) / n, self.timescale)


class Span(NamedTuple):
    """Where a stage lies in the run: steps start ≤ t < end."""

    name: str
    start: int
    end: int


class Schedule:
    """A chain of stages over `total_steps` optimizer steps; `lr(step)` is pure.

    `events` names every stage boundary (`<stage>_start`, `<stage>_end`, also for a stage that
    rounds to 0 steps, so a schedule always has the same event names) plus any extra events.
    """

    def __init__(self, parts: list[Stage], total_steps: int, final_lr: float, events: dict[str, int] | None = None):
        assert parts and parts[0].start == 0 and parts[-1].end == total_steps, "stages must cover the run"
        assert all(p.end == q.start for p, q in zip(parts, parts[1:])), "stages must be contiguous"
        self.total_steps = total_steps
        self.final_lr = final_lr
        self.events: dict[str, int] = {}
        for p in parts:
            self.events[f"{p.name}_start"] = p.start
            self.events[f"{p.name}_end"] = p.end
        self.events.update(events or {})
        self.parts = [p for p in parts if p.end > p.start]
        self.peak_lr = max([p.a for p in self.parts] + [p.b for p in self.parts] + [final_lr])

    @property
    def stages(self) -> list[Span]:
        """(name, start_step, end_step) of every stage that lasts at least one step."""
        return [Span(p.name, p.start, p.end) for p in self.parts]

    def lr(self, step: int) -> float:
        """LR that step `step` runs at; `lr(total_steps)` (and beyond) is the final LR."""
        if step < 0:
            raise ValueError(f"step {step} < 0")
        for p in self.parts:
            if p.start <= step < p.end:
                return p.lr(step)
        return self.final_lr

    def lrs(self) -> list[float]:
        """The LR of every step of the run, first step first (the loss law reads a run this way)."""
        return [p.lr(step) for p in self.parts for step in range(p.start, p.end)]

    def stage_at(self, step: int) -> str:
        """Name of the stage that step `step` is in ("end" from `total_steps` on)."""
        for p in self.parts:
            if p.start <= step < p.end:
                return p.name
        return "end"
