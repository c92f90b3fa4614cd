"""The statistics the studies report: mean ± standard deviation over seeds, and a 95% interval for each claimed
difference, so that "tie" means the interval contains zero.

- `summary(values)`: n, mean, sample standard deviation (None for one value), the values.
- `difference(a, b, paired=...)`: mean(a) − mean(b) with its 95% t-interval: on the per-seed differences when
  the two arms share their seeds (paired: an update and the union run of the same seed), Welch's interval
  otherwise; the gap also relative to b's mean (the paper's 0.02 at loss 2.35 is 0.85%). With fewer than two
  values an arm has no spread and the difference no interval: its verdict says so rather than call a tie.
- `within(d, margin)` and `at_most(d, bound)`: a claim of "as good as" or "costs at most" shown, not merely not
  refuted: the whole interval inside the margin (an equivalence test); None without an interval. A tie of
  three noisy seeds is not equivalence.
"""

from __future__ import annotations

import math
import statistics

from scipy.stats import t as student_t

LEVEL = 0.95


def summary(values: list[float]) -> dict:
    values = [float(v) for v in values]
    return {"n": len(values), "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "values": values}


def difference(a: list[float], b: list[float], *, paired: bool) -> dict:
    """a − b: its mean, 95% interval (low, high), relative size, and verdict ("lower", "higher", "tie" or
    "one seed: no interval")."""
    if paired and len(a) != len(b):
        raise ValueError(f"a paired difference needs as many values on each side, not {len(a)} and {len(b)}")
    mean = statistics.fmean(a) - statistics.fmean(b)
    if paired:
        d = [x - y for x, y in zip(a, b)]
        se, df = (statistics.stdev(d) / math.sqrt(len(d)), len(d) - 1) if len(d) > 1 else (None, 0)
    elif len(a) > 1 and len(b) > 1:
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if va + vb > 0 else len(a) + len(b) - 2
    else:
        se, df = None, 0
    out = {"mean": mean, "relative": mean / statistics.fmean(b), "paired": paired, "n": [len(a), len(b)], "low": None, "high": None}
    if se is None:
        return {**out, "verdict": "one seed: no interval"}
    half = float(student_t.ppf(0.5 + LEVEL / 2, df)) * se if se > 0 else 0.0
    low, high = mean - half, mean + half
    verdict = "tie" if low <= 0 <= high else ("lower" if high < 0 else "higher")
    return {**out, "low": low, "high": high, "verdict": verdict}


def within(d: dict, margin: float) -> bool | None:
    """The interval of `d` inside [−margin, margin]; None when `d` has no interval."""
    return None if d["low"] is None else (-margin <= d["low"] and d["high"] <= margin)


def at_most(d: dict, bound: float) -> bool | None:
    """The interval of `d` at or below `bound`; None when `d` has no interval."""
    return None if d["high"] is None else d["high"] <= bound


def cell(s: dict, digits: int = 3) -> str:
    """A table cell of a summary: `mean ± sd` (the mean alone for one seed)."""
    return f"{s['mean']:.{digits}f}" if s["sd"] is None else f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}"


def gap_cell(d: dict, digits: int = 3, *, relative: bool = True) -> str:
    """A table cell of a difference: `+0.012 [−0.004, +0.028] (0.4%)`, its interval where it has one, and its
    size relative to b unless `relative` is False (a difference of two gaps, whose b may be near 0)."""
    head = f"{d['mean']:+.{digits}f}"
    if d["low"] is not None:
        head += f" [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"
    return f"{head} ({d['relative']:+.1%})" if relative else head
