"""When an evaluator runs: a pure function of the step, like a schedule.

`step` counts optimizer steps done, so step 0 is the model before training and step `total` the
finished model; both are always evaluated (the first is the baseline every change is measured
against, the last is the version). Between them:

- every N steps (`{every: 50}`), the classic held-out curve;
- log-spaced (`{log: 8}`): at most 8 steps evenly spaced in log(step + 1), dense at the start.
  Guo et al. 2024 ("Efficient continual pre-training by mitigating the stability gap") show the
  loss on the new data first rises, then recovers, within the first few hundred steps of an update;
  an every-N cadence coarse enough to be cheap over the whole run misses that dip.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated

from pydantic import Field

from renewlm.config import Config


class Every(Config):
    """At step 0, every `every` steps, and at the last step."""

    every: int = Field(ge=0, description="Evaluate every N optimizer steps (0: at the start and the end only).")

    def steps(self, total: int) -> list[int]:
        inner = range(self.every, total, self.every) if self.every else []
        return sorted({0, *inner, total})

    def due(self, step: int, total: int) -> bool:
        return step in (0, total) or (self.every > 0 and 0 < step < total and step % self.every == 0)


class LogSpaced(Config):
    """At most `log` steps evenly spaced in log(step + 1) from 0 to the last step, both included."""

    log: Annotated[int, Field(ge=2, description="Evaluation points (at most; close ones merge early in short runs).")]

    def steps(self, total: int) -> list[int]:
        return list(_log_steps(self.log, total))

    def due(self, step: int, total: int) -> bool:
        return step in _log_steps(self.log, total)


@lru_cache(maxsize=64)
def _log_steps(points: int, total: int) -> tuple[int, ...]:
    if total <= 0:
        return (0,)
    top = math.log(total + 1)
    steps = {round(math.exp(top * k / (points - 1))) - 1 for k in range(points)}
    return tuple(sorted(steps | {0, total}))


Cadence = Every | LogSpaced
