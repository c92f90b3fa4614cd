"""Stages of a learning-rate schedule: each maps a step within the stage to a learning rate.

A stage runs from `start` (inclusive) to `end` (exclusive) and goes from LR `a` to LR `b`; at its
last step it has not quite reached `b`, which the next stage (or the end of the run) starts at.
All shapes are pure functions of x = (step − start) / (end − start) in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

DecayShape = Literal["linear", "cosine", "1-sqrt", "1-square", "exp"]


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
    if shape == "exp":  # Ibrahim et al. 2024's anneal: η_a·(η_b/η_a)^x; needs b > 0
        return a * (b / a) ** x
    if shape == "inv-sqrt":  # Ibrahim et al. 2024's cooldown: h(x) = 1/√(1+αx) − 1, normalised by h(1)
        h = lambda v: 1.0 / math.sqrt(1.0 + timescale * v) - 1.0  # noqa: E731
        return a + (b - a) * h(x) / h(1.0)
    raise ValueError(f"unknown decay shape {shape!r}")


@dataclass(frozen=True)
class Stage:
    name: str
    start: int
    end: int
    a: float  # LR at the stage's start
    b: float  # LR the stage heads for (reached at `end`)
    shape: str = "linear"  # "linear" with a == b is a constant stage
    timescale: float = 10.0

    def lr(self, step: int) -> float:
        if self.name == "warmup":
            # The first warmup step already moves: step t runs at a + (b − a)·(t+1)/n, so the
            # last warmup step runs at the peak (a warmup of 0 steps is no stage at all).
            return self.a + (self.b - self.a) * (step - self.start + 1) / (self.end - self.start)
        if self.a == self.b:
            return self.a
        return decay(self.shape, self.a, self.b, (step - self.start) / (self.end - self.start), self.timescale)


class Schedule:
    """A chain of stages over `total_steps` optimizer steps; `lr(step)` is pure."""

    def __init__(self, stages: list[Stage], total_steps: int, final_lr: float, events: dict[str, int] | None = None):
        self.stages = [s for s in stages if s.end > s.start]
        self.total_steps = total_steps
        self.final_lr = final_lr
        named: dict[str, int] = {}
        for s in self.stages:
            named.setdefault(f"{s.name}_start", s.start)
            named[f"{s.name}_end"] = s.end
        named.update(events or {})
        self.events = named
        ends = [s.a for s in self.stages] + [s.b for s in self.stages] + [final_lr]
        self.peak_lr = max(ends)

    def lr(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step {step} < 0")
        for s in self.stages:
            if s.start <= step < s.end:
                return s.lr(step)
        return self.final_lr

    def boundaries(self) -> list[tuple[str, int, int]]:
        return [(s.name, s.start, s.end) for s in self.stages]
