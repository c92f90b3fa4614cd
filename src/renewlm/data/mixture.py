"""Mixtures: which corpora a run reads, with what weight, in which phase, and how much replay.

A mixture is a list of phases. Each phase gives `corpus: weight` and the point of the run where it
ends: a fraction, or the name of a schedule event (e.g. `switch` of the `reuse` schedule). `replay`
gives a share of every phase to corpora of earlier versions.

Replay is compute-equivalent (Ibrahim et al. 2024 §4): with replay r, the phase's own corpora get
(1 - r) of its samples and the replay corpora r, so the run costs the same with or without replay.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from renewlm.config import Config, load, validate
from renewlm.errors import ConfigError


def _some_positive(weights: dict[str, float]) -> dict[str, float]:
    if sum(weights.values()) <= 0:
        raise ValueError("the weights sum to 0; give at least one corpus a positive weight")
    return weights


# Infinite or NaN weights are refused here: normalising them gives NaN shares (the audit's `.inf`
# weight crashed the interleaving), and a finite total keeps every share exact (see phase_fractions).
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Weights = Annotated[dict[str, Weight], Field(min_length=1), AfterValidator(_some_positive)]


class Phase(Config):
    """One stretch of the run with fixed corpus weights."""

    corpora: Weights = Field(description="Corpus name to weight; weights are relative and need not sum to 1.")
    end: Annotated[float, Field(gt=0, le=1)] | str = Field(
        1.0,
        description="Where the phase ends: a fraction of the run in (0, 1], or a schedule event name.",
    )


class Replay(Config):
    """Old data mixed into every phase, taken from the new data's share (compute-equivalent)."""

    fraction: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        description="Share of every phase given to the replay corpora (0.05 for a weak shift, 0.25 for a strong one)."
    )
    corpora: Weights = Field(description="Replay corpus name to weight, split among them by weight.")


class MixtureSpec(Config):
    """A mixture: phases, optional replay, optional per-corpus epoch limits."""

    phases: list[Phase] = Field(min_length=1, description="Phases in order; the last ends at 1.")
    replay: Replay | None = Field(None, description="Old data mixed into every phase.")
    max_epochs: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict,
        description="Corpus name to the most passes over it the run may make; planning fails beyond it.",
    )

    @model_validator(mode="after")
    def _ends_rise_to_one(self) -> MixtureSpec:
        fixed = [p.end for p in self.phases if not isinstance(p.end, str)]
        if any(b <= a for a, b in zip(fixed, fixed[1:])):
            raise ValueError(f"phase ends {fixed} must rise strictly; order the phases by where they end")
        last = self.phases[-1].end
        if last != 1.0:
            raise ValueError(f"the last phase ends at {last!r}, not 1; the phases must cover the whole run")
        return self

    def corpus_names(self) -> list[str]:
        """Every corpus the mixture reads, in first-mentioned order."""
        names: dict[str, None] = {}
        for phase in self.phases:
            names.update(dict.fromkeys(phase.corpora))
        if self.replay is not None:
            names.update(dict.fromkeys(self.replay.corpora))
        return list(names)

    def phase_ends(self, events: dict[str, float] | None = None) -> list[float]:
        """Phase ends as fractions of the run; `events` maps schedule event names to fractions."""
        events = events or {}
        ends = []
        for i, phase in enumerate(self.phases):
            if isinstance(phase.end, str):
                if phase.end not in events:
                    known = ", ".join(sorted(events)) or "none"
                    raise ConfigError(
                        f"phase {i + 1} ends at schedule event {phase.end!r}, which the run's schedule "
                        f"does not have (it has: {known}); use one of those or a fraction"
                    )
                ends.append(float(events[phase.end]))
            else:
                ends.append(float(phase.end))
        if any(b <= a for a, b in zip(ends, ends[1:])) or not 0 < ends[0]:
            raise ConfigError(
                f"phase ends resolve to {ends}, which do not rise strictly to 1; "
                f"move the phase ends or the schedule event"
            )
        return ends

    def phase_fractions(self) -> list[dict[str, Fraction]]:
        """Exact shares of each phase with replay folded in (each dict sums to exactly 1).

        Each weight is read as the decimal it was written as (0.3 is 3/10, not the nearest binary
        float), so the interleaving can repeat with a short exact period (see stream.py)."""
        out = []
        replay = Fraction(repr(self.replay.fraction)) if self.replay else Fraction(0)
        for phase in self.phases:
            own = {name: _exact(w) for name, w in phase.corpora.items()}
            total = sum(own.values())
            shares = {name: (1 - replay) * w / total for name, w in own.items()}
            if self.replay is not None:
                old = {name: _exact(w) for name, w in self.replay.corpora.items()}
                old_total = sum(old.values())
                for name, w in old.items():
                    shares[name] = shares.get(name, Fraction(0)) + replay * w / old_total
            out.append({name: w for name, w in shares.items() if w > 0})
        return out

    def phase_weights(self) -> list[dict[str, float]]:
        """Normalised weights of each phase with replay folded in (each dict sums to 1)."""
        return [{name: float(w) for name, w in phase.items()} for phase in self.phase_fractions()]


def _exact(weight: float) -> Fraction:
    return Fraction(repr(float(weight)))


def load_mixture(path) -> MixtureSpec:
    return load(MixtureSpec, path)


def validate_mixture(data: object, where: str = "mixture") -> MixtureSpec:
    return validate(MixtureSpec, data, where)


def single(corpus_weights: dict[str, float], replay: dict[str, float] | None = None,
           replay_fraction: float = 0.0) -> MixtureSpec:
    """A one-phase mixture, as `renewlm update` builds from its flags."""
    data: dict = {"phases": [{"corpora": corpus_weights, "end": 1.0}]}
    if replay and replay_fraction > 0:
        data["replay"] = {"fraction": replay_fraction, "corpora": replay}
    return validate_mixture(data)
