"""Token counts as people write them (2B, 500M, 1e10, 38,889), and the held-out defaults every command shares."""

from __future__ import annotations

import math

from renewlm.errors import ConfigError

# Held-out tokens per corpus and windows per forward pass: a run's defaults and `renewlm eval`'s, `soup`'s and
# `sweep`'s, so every command reads the same windows and their losses compare.
DEFAULT_EVAL_TOKENS = 65536
DEFAULT_EVAL_MICRO_BATCH = 8

_SUFFIXES = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_tokens(text: str, option: str = "--tokens-per-release") -> float:
    """A token count: a number (1e10, 10_000_000_000) with an optional suffix k, M, B (or G), T."""
    body = text.strip().replace("_", "").replace(",", "")
    suffix = body[-1:].lower() if body[-1:].isalpha() and body[-1:].lower() in _SUFFIXES else ""
    try:
        value = float(body[: len(body) - len(suffix)]) * _SUFFIXES[suffix]
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{option} {text!r} is not a token count; write e.g. 10B, 500M or 1e10")
    return value
