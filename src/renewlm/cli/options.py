"""The vocabulary every command shares: lists, token counts and numbers parsed one way, and the old spellings of
renamed flags, which keep working for one release with a note on stderr (docs/reliability.md lists them)."""

from __future__ import annotations

import math
import sys
from typing import TypeVar

from renewlm.counts import parse_tokens
from renewlm.errors import ConfigError

T = TypeVar("T")


def names(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated lists alike: `--data a --data b` or `--data a,b`."""
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def count(text: str | None, flag: str) -> int | None:
    """One token count, written 2000000000, 2e9, 2,000,000,000 or 2B; it must be whole."""
    if text is None:
        return None
    value = parse_tokens(text, flag)
    if value != int(value):
        raise ConfigError(f"{flag} {text} is not a whole number of tokens; e.g. {flag} 1e9 or {flag} 2B")
    return int(value)


def counts(values: list[str] | None, flag: str) -> list[int] | None:
    """Token counts, repeated or comma-separated: `--durations 1B,2B` (None when the flag is not given)."""
    return [count(v, flag) for v in names(values)] if values else None


def numbers(values: list[str] | None, flag: str) -> list[float] | None:
    """Numbers, repeated or comma-separated: `--lrs 1e-4,3e-4` (None when the flag is not given)."""
    if not values:
        return None
    out = []
    for item in names(values):
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"{flag} {','.join(values)} is not a list of numbers: {item!r} is not a number; write e.g. {flag} 0.25,0.75")
        out.append(value)
    return out


def renamed(new: T, old: T, old_flag: str, new_flag: str) -> T:
    """The value of a flag given under its new name or its old one (noted on stderr); both at once is refused."""
    if old is None or old == []:
        return new
    if new is not None and new != []:
        raise ConfigError(f"{old_flag} is the old spelling of {new_flag}; give {new_flag} only")
    print(f"note: {old_flag} is renamed {new_flag}; the old spelling goes in the next release", file=sys.stderr)
    return old
