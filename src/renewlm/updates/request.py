"""What `renewlm update` is asked for, in one model: `UpdateRequest`, checked before the store is read.

The command line builds one from its flags and a Python caller builds the same one, so both meet the same
refusals, in the same sentences (each names its flag):

    request = UpdateRequest(name="v2", parent="v1", data=["code"], replay=0.05, steps=1000)
    run_update(store, request)

Every rule that needs only the request lives here; the rules that read the store (the corpora exist, the
lineage has data to replay, what the parent's record says) are checked where the run is built (update.py,
retrain.py, paradigm.py). `plan` and `sweep` check their `--replay` and `--decay-fraction` with the rules
here too (`checked`), so a share of a batch means the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, ValidationError, ValidationInfo, field_validator, model_validator

from renewlm.config import Config, Whole, describe
from renewlm.errors import ConfigError
from renewlm.optim.schedule import validate_schedule
from renewlm.versions import PARADIGMS, Paradigm

Recipe = Literal["cosine", "wsd", "reuse", "constant"]
ReleaseKind = Literal["decay", "average"]  # how a switch update makes its release from the trunk
ReplaySource = Literal["data", "parent"]  # replay read from corpora, or sampled from the parent (updates/generated.py)
ReplayPrompts = Literal["bos", "data"]  # what a sampled replay document starts from
T = TypeVar("T")

# The reuse cosine falls from its start to its floor (1/100 of it), so a blend switch at LR = start/R needs
# R strictly between 1 and that span.
_REUSE = validate_schedule({"name": "reuse", "start_lr": 1.0})
REUSE_SPAN = _REUSE.peak / _REUSE.floor


def known_paradigm(value: T) -> T:
    """One of the three ways to make the next version (renewlm.versions.PARADIGMS)."""
    if value not in PARADIGMS:
        raise ValueError(f"unknown paradigm {value!r}; choose {', '.join(PARADIGMS[:-1])} or {PARADIGMS[-1]}")
    return value


def replay_share(value: float) -> float:
    """A replay share F of every batch, in [0, 1): F = 1 would leave no room for the new data."""
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"--replay {value:g} is outside [0, 1): --replay must be a share of every batch given to old data, "
                         f"e.g. --replay 0.05")
    return value


def decay_share(value: float) -> float:
    """A decay's length as a share A in (0, 1] of the run it branches off (a release off its trunk)."""
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"--decay-fraction {value:g} is outside (0, 1]; a decay lasts a share of the run it branches off, "
                         f"e.g. --decay-fraction 0.1")
    return value


def checked(rule: Callable[[T], T], value: T) -> T:
    """`value` under one of the request's rules outside a request (plan, a sweep): its sentence as a ConfigError."""
    try:
        return rule(value)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def parse_data(items: list[str], flag: str = "--data") -> dict[str, float | None]:
    """`--data NAME` or `--data NAME:WEIGHT`, repeated; weights are all given or all left out."""
    out: dict[str, float | None] = {}
    for item in items:
        name, sep, weight = item.rpartition(":") if ":" in item else (item, "", "")
        value = None
        if sep:
            try:
                value = float(weight)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{flag} {item}: the weight after ':' must be a positive number, e.g. {flag} {name}:0.7")
        if name in out:
            raise ConfigError(f"{flag} names corpus {name!r} twice; give each corpus once")
        out[name] = value
    given = [w is not None for w in out.values()]
    if any(given) and not all(given):
        raise ConfigError(f"give a weight to every {flag} corpus (NAME:WEIGHT) or to none (weights by token count)")
    return out


def parse_replay(text: str) -> float | Literal["auto"]:
    """`--replay` as typed: `auto`, or a number (checked as a share where the request is made)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ConfigError(_not_a_share(text)) from None


def _not_a_share(value: Any) -> str:
    return (f"--replay {value} is neither a share nor auto: give a share of every batch in [0, 1), e.g. --replay 0.05, "
            "or --replay auto with --forget-budget")


def replay_or_auto(value: Any) -> float | Literal["auto"]:
    """`replay`: a share, as `replay_share` checks it (a number: strict, as every field of a request), or `auto`
    (a share chosen by prediction)."""
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(_not_a_share(value))
    return replay_share(float(value))


DecayFraction = Annotated[float, AfterValidator(decay_share)]
# Each size: its unit, and how to fix a value below 1 (the update's length is never the parent's).
_TAKE_THE_PARENTS = "leave it out to take the parent's"
_SIZES = {
    "seq_len": ("tokens", _TAKE_THE_PARENTS), "batch_tokens": ("tokens", _TAKE_THE_PARENTS),
    "micro_batch": ("sequences", _TAKE_THE_PARENTS), "tokens": ("tokens", "e.g. --tokens 2e9"), "steps": ("steps", "e.g. --steps 1000"),
    "average_window": ("steps", "e.g. --average-window 50, or leave it out for the trunk's last 10%"),
}


class UpdateRequest(Config):
    """One `renewlm update`: the new version, its parent, its data and how to train it. Left out, a length or
    batch setting comes from the parent's record, and the learning rate from the parent's schedule."""

    name: str = Field(description="Name of the new version.")
    parent: str = Field(description="The version to update (`--from`).")
    data: list[str] = Field(description="New corpora, NAME or NAME:WEIGHT (weights left out: by token count, as if concatenated).")
    paradigm: Annotated[Paradigm, BeforeValidator(known_paradigm)] = Field(
        "continue", description="continue: from the weights; switch: path switching (trunk + release); retrain: from scratch.",
    )
    replay: Annotated[float | Literal["auto"], PlainValidator(replay_or_auto)] = Field(
        0.0, description="Share of every batch replayed from the lineage's corpora, in [0, 1); auto: the smallest share "
        "whose predicted forgetting is within --forget-budget (docs/prediction.md).",
    )
    forget_budget: float | None = Field(
        None, description="--replay auto: the most the update may raise any old corpus's held-out loss, in nats, as predicted.",
    )
    predict: bool = Field(
        False, description="continue: predict the update's held-out losses before it trains, and keep them in its record.",
    )
    replay_from: list[str] | None = Field(None, description="Replay these corpora instead of the lineage's.")
    replay_source: ReplaySource = Field(
        "data", description="data: replay the lineage's corpora (or --replay-from); parent: replay a corpus sampled from "
        "the parent version, for a model whose pre-training data is not at hand.",
    )
    replay_temperature: float | None = Field(None, description="--replay-source parent: the sampling temperature (default 1).")
    replay_prompts: ReplayPrompts | None = Field(
        None, description="--replay-source parent: start each sampled document from BOS (bos, the default) or from the "
        "first tokens of a new-data document (data).",
    )
    tokenizer: str | None = Field(
        None, description="continue, switch: train with this extension of the parent's tokenizer (`renewlm tokenizer extend`); "
        "the model's embeddings and head grow to its vocabulary.",
    )
    recipe: Recipe | None = Field(None, description="continue: the learning-rate recipe (default cosine: re-warm and re-decay).")
    lr: float | None = Field(None, description="Top LR of the recipe (default: from the parent's schedule).")
    tokens: Whole | None = Field(None, description="Training tokens (or give steps).")
    steps: Whole | None = Field(None, description="Optimizer steps (or give tokens).")
    seq_len: int | None = Field(None, description="Sequence length (default: the parent's).")
    batch_tokens: int | None = Field(None, description="Global batch in tokens (default: the parent's).")
    micro_batch: int | None = Field(None, description="Sequences per forward pass per process (default: at most 8 dividing the batch).")
    eval_every: int = Field(0, description="Held-out evaluation every N steps (0: at the start and end only).")
    checkpoint_every: int = Field(0, description="Checkpoint every N steps (0: only where a run stops).")
    seed: int = Field(0, description="Data-order seed.")
    decay_fraction: DecayFraction = Field(0.1, description="switch: the release's decay, as a share of the update's tokens.")
    release: ReleaseKind = Field(
        "decay", description="switch: decay (a branch with a complete decay) or average (the trunk's last steps averaged, no decay run).",
    )
    average_window: Whole | None = Field(
        None, description="switch with --release average: the trunk's last N steps averaged (default: its last 10%).",
    )
    then: list[str] | None = Field(
        None, description="reuse recipe: the second blend's corpora, NAME or NAME:WEIGHT, from LR = start/5 on (see switch_at).",
    )
    switch_at: float | None = Field(None, description="With then: start the second blend at LR = start/R, R in (1, 100) (default 5).")

    def __init__(self, /, **data: Any) -> None:
        """Built from Python as from the command line: a refusal is a ConfigError, one sentence per problem
        (`model_validate` checks the same, raising pydantic's ValidationError)."""
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ConfigError(describe(e, "update request", own_sentences=True)) from None

    @field_validator("data", "then")
    @classmethod
    def _blend(cls, items: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if info.field_name == "data" and not items:
            raise ValueError("an update needs new data; give --data NAME (repeat for several)")
        try:
            parse_data(items or [], _flag(info))
        except ConfigError as e:  # pydantic gathers a ValueError with the request's other problems
            raise ValueError(str(e)) from None
        return items

    @field_validator(*_SIZES)
    @classmethod
    def _positive(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value < 1:
            unit, fix = _SIZES[info.field_name]
            raise ValueError(f"{_flag(info)} must be a positive number of {unit} (got {value}); {fix}")
        return value

    @field_validator("eval_every", "checkpoint_every")
    @classmethod
    def _cadence(cls, value: int, info: ValidationInfo) -> int:
        if value < 0:
            raise ValueError(f"{_flag(info)} must be a number of steps, 0 or more (got {value}); 0 (the default) for none")
        return value

    @field_validator("lr")
    @classmethod
    def _learning_rate(cls, lr: float | None) -> float | None:
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"--lr must be a positive learning rate (got {lr}); e.g. --lr 3e-4")
        return lr

    @field_validator("switch_at")
    @classmethod
    def _on_the_reuse_cosine(cls, ratio: float | None) -> float | None:
        if ratio is not None and not (math.isfinite(ratio) and 1 < ratio < REUSE_SPAN):
            raise ValueError(f"--switch-at R switches blends at LR = start/R, so R must lie in (1, {REUSE_SPAN:g}) "
                             f"(got {ratio}); e.g. --switch-at 5")
        return ratio

    @model_validator(mode="after")
    def _consistent(self) -> UpdateRequest:
        problems = []
        if (self.tokens is None) == (self.steps is None):
            problems.append("give exactly one of --tokens and --steps for the update's length")
        problems += self._paradigm_problems() + self._replay_problems() + self._prediction_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _paradigm_problems(self) -> list[str]:
        """The flags the paradigm does not take, and the reuse recipe's second blend given without its parts."""
        p, problems = self.paradigm, []
        if p != "switch" and self.release != "decay":
            problems.append(f"--release average releases a path-switching trunk's averaged weights, which --paradigm {p} "
                            f"does not keep; add --paradigm switch or leave --release out")
        if self.average_window is not None and self.release != "average":
            problems.append("--average-window sets how many of the trunk's last steps an averaged release averages; add "
                            "--paradigm switch --release average or leave it out")
        if p != "continue" and self.switch_at is not None:
            problems.append(f"--switch-at moves the reuse recipe's blend switch, which --paradigm {p} does not use; leave it out")
        if p == "retrain":
            unused = [flag for flag, given in (("--recipe", self.recipe), ("--then", self.then), ("--replay", self.replay),
                                                ("--replay-from", self.replay_from), ("--tokenizer", self.tokenizer),
                                                ("--replay-source", self.replay_source != "data")) if given]
            if unused:
                problems.append(f"--paradigm retrain trains from scratch on all the data, so it takes no {', '.join(unused)}; "
                                f"leave {'it' if len(unused) == 1 else 'them'} out")
        elif p == "switch" and (self.recipe is not None or self.then):
            problems.append("--paradigm switch sets the schedules itself (the trunk at its peak LR, the release's complete "
                            "decay); leave out --recipe and --then, and set the decay length with --decay-fraction")
        elif p == "continue" and self.then and self.recipe != "reuse":
            problems.append("--then starts a second blend at the reuse recipe's switch event (LR at start/5, Parmar et al. "
                            "2024); add --recipe reuse, or use a run file with phases for other schedules")
        elif p == "continue" and self.switch_at is not None and not self.then:
            problems.append("--switch-at sets where the second blend starts; give that blend with --then (and --recipe reuse)")
        return problems

    def _replay_problems(self) -> list[str]:
        """A replay sampled from the parent needs a share to fill and takes no corpora; its settings need it."""
        problems = []
        t = self.replay_temperature
        if self.replay_source == "parent":
            if self.replay == 0 and self.paradigm != "retrain":
                problems.append("--replay-source parent samples the replay share from the parent, so it needs a share; "
                                "add --replay, e.g. --replay 0.05")
            if self.replay_from:
                problems.append("--replay-source parent samples the replay from the parent instead of reading corpora; "
                                "leave out --replay-from, or leave out --replay-source parent to replay those corpora")
            if self.tokenizer:
                problems.append("--replay-source parent samples with the parent's tokenizer, but --tokenizer trains on "
                                "corpora prepared with its extension; sample the replay without --tokenizer, or prepare "
                                "replay corpora with the extension and name them with --replay-from")
        else:
            given = [flag for flag, value in (("--replay-temperature", t), ("--replay-prompts", self.replay_prompts)) if value]
            if given:
                problems.append(f"{' and '.join(given)} set how the replay is sampled from the parent; add "
                                f"--replay-source parent or leave {'it' if len(given) == 1 else 'them'} out")
        if t is not None and not (math.isfinite(t) and t > 0):
            problems.append(f"--replay-temperature must be a positive temperature (got {t}); 1 (the default) samples the "
                            f"parent's own distribution")
        return problems

    def _prediction_problems(self) -> list[str]:
        """A prediction is of a continued update; `--replay auto` needs a budget, and a budget needs it."""
        problems, auto, budget = [], self.replay == "auto", self.forget_budget
        if (self.predict or auto) and self.paradigm != "continue":
            problems.append(f"{'--replay auto' if auto else '--predict'} predicts an update of the continue paradigm; renewlm does "
                            f"not yet predict --paradigm {self.paradigm}, so leave it out or use --paradigm continue")
        if auto and budget is None:
            problems.append("--replay auto chooses the smallest share whose predicted forgetting is within a budget; add "
                            "--forget-budget, e.g. --forget-budget 0.02 (nats)")
        if budget is not None and not auto:
            problems.append("--forget-budget is the budget --replay auto chooses a share within; add --replay auto or leave it out")
        if budget is not None and not (math.isfinite(budget) and budget > 0):
            problems.append(f"--forget-budget must be a positive rise of held-out loss in nats (got {budget}); e.g. --forget-budget 0.02")
        if (self.predict or auto) and self.then:
            problems.append(f"{'--replay auto' if auto else '--predict'} predicts an update of one blend; the reuse recipe's "
                            "second (--then) is not predicted, so leave out --then")
        if auto and (self.replay_source == "parent" or self.replay_from):
            problems.append("--replay auto predicts replay of the lineage's own corpora; with "
                            f"{'--replay-source parent' if self.replay_source == 'parent' else '--replay-from'}, give the share "
                            "with --replay F")
        return problems


def _flag(info: ValidationInfo) -> str:
    return "--" + info.field_name.replace("_", "-")
