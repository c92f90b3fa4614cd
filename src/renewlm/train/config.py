"""The run config: everything a training run needs, composed from each component's own config.

A run YAML names its model (a parent version or folder, or a preset), the mixture, the schedule and
the loop settings. It is written back, resolved, to `runs/NAME/run.yaml`, so any run can be repeated
with `renewlm train`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from renewlm.config import MAX_SEQ_LEN, MAX_STEPS, MAX_TOKENS, Config, Whole, load, validate
from renewlm.counts import DEFAULT_EVAL_TOKENS
from renewlm.data.mixture import MixtureSpec
from renewlm.errors import ConfigError
from renewlm.eval.config import Evaluations
from renewlm.model.presets import check_preset
from renewlm.optim.schedule import ScheduleSpec
from renewlm.train.trackers import TrackerName
from renewlm.versions.record import PredictionRecord

PositiveInt = Annotated[int, Field(gt=0)]
Count = Annotated[Whole, Field(gt=0)]


def _known_preset(name: str) -> str:
    try:
        return check_preset(name)
    except ConfigError as e:  # pydantic gathers a ValueError with the run's other problems
        raise ValueError(str(e)) from None


# A name in the preset table (model/presets.py), so a new preset is one row there.
PresetName = Annotated[str, AfterValidator(_known_preset)]


def _run_paradigm(value: object) -> object:
    if value == "single":  # the word for continue in run files written before renewlm spoke of paradigms alike
        return "continue"
    if value == "retrain":
        raise ValueError(
            "a run file retrains with from_scratch: true (random weights in the parent's architecture), not paradigm: "
            "retrain; write from_scratch: true and leave paradigm out"
        )
    return value


# Two of the update paradigms (renewlm.versions.PARADIGMS): a run file's retrain is `from_scratch: true`, one way to say it.
RunParadigm = Annotated[Literal["continue", "switch"], BeforeValidator(_run_paradigm)]


def _z_loss(value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{value} is not a z-loss weight; give 0 (off) or a small positive number such as 1e-4 "
                         f"(PaLM's and OLMo 2's)")
    return value


ZLoss = Annotated[float, AfterValidator(_z_loss)]


class OptimizerConfig(Config):
    """AdamW. The learning rate comes from the schedule, set on every param group each step."""

    betas: tuple[float, float] = Field((0.9, 0.95), strict=False, description="Adam β1, β2 (Ibrahim et al.: 0.9, 0.95).")
    eps: float = Field(1e-8, gt=0, description="Adam ε.")
    weight_decay: float = Field(0.1, ge=0, description="Decoupled weight decay; norms and biases get none.")
    grad_clip: float = Field(1.0, ge=0, description="Clip the global gradient norm to this (0: no clipping).")


class AverageConfig(Config):
    """An averaged release of this run (a trunk at constant LR): the uniform average of its weights after each of its
    last `steps` steps, written as version `release` (path switching's release without a decay run)."""

    release: str = Field(description="The version the average is written as (a release branched off this run's version).")
    steps: PositiveInt = Field(description="The window: the run's last N steps, whose weights are averaged (skipped ones left out).")


class RunConfig(Config):
    """One training run; at its end it writes version `name`."""

    name: str = Field(description="The version this run writes; its run folder is runs/NAME.")
    parent: str | None = Field(
        None, description="Start from this version in the store or local Hugging Face folder (weights only)."
    )
    preset: PresetName | None = Field(
        None, description="Pre-train from scratch with this Llama-architecture preset."
    )
    tokenizer: str | None = Field(
        None, description="Tokenizer (store name or folder); defaults to the parent's. Required with a preset."
    )
    trust_remote_code: bool = Field(False, description="Allow a parent folder's own model code to run.")
    from_scratch: bool = Field(
        False,
        description="Random weights in the parent's architecture instead of its trained ones (the retrain baseline).",
    )
    paradigm: RunParadigm = Field(
        "continue",
        description="continue: this run writes version NAME. switch (path switching): this run is the main path, written "
        "as trunk NAME-trunk, and release NAME branches off it with a complete decay over decay_fraction of its tokens. "
        "(A retrain is from_scratch: true; run files written before the word continue say single, read as continue.)",
    )
    decay_fraction: float = Field(
        0.1, gt=0, le=1, description="With paradigm switch: the release's decay, as a share of this run's tokens (MiniCPM: 10%)."
    )
    kind: Literal["release", "trunk"] = Field(
        "release",
        description="release: a decayed model for use. trunk: a main-path point kept with its optimizer state.",
    )
    load_optimizer: bool = Field(
        False,
        description="Carry the parent trunk version's optimizer state (path switching) instead of a fresh AdamW.",
    )
    mixture: MixtureSpec = Field(description="Which corpora, with what weight, in which phase.")
    schedule: ScheduleSpec = Field(description="Learning rate as a function of the step.")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    embedding_lr_scale: float = Field(
        1.0, gt=0, allow_inf_nan=False,
        description="LR multiplier for the input embedding and output head (their own param group): above 1 lets the new "
        "rows of a grown vocabulary move faster than the rest of the model.",
    )
    seq_len: PositiveInt = Field(description="Tokens per training sequence.")
    batch_tokens: PositiveInt = Field(description="Global batch in tokens (a multiple of seq_len).")
    micro_batch: PositiveInt = Field(description="Sequences per forward pass on each process.")
    steps: Count | None = Field(None, description="Optimizer steps (or give tokens).")
    tokens: Count | None = Field(None, description="Training tokens, rounded down to whole steps.")
    eval_every: int = Field(0, ge=0, description="Held-out evaluation every N steps (0: at the start and end only).")
    evaluations: Evaluations = Field(
        default_factory=list,
        description="Evaluators and their cadences (default: held-out loss every eval_every steps); see docs/evaluation.md.",
    )
    eval_tokens: PositiveInt = Field(DEFAULT_EVAL_TOKENS, description="Held-out tokens evaluated per corpus.")
    checkpoint_every: int = Field(0, ge=0, description="Checkpoint every N steps (0: never). A finished run writes its version instead; a stopped run, or one whose version cannot be written, is checkpointed where it is.")
    keep_checkpoints: PositiveInt = Field(2, description="Newest checkpoints kept.")
    keep_checkpoints_when_finished: bool = Field(
        False, description="Keep the run's checkpoints once its version is written (default: deleted then).",
    )
    seed: int = Field(0, description="Seeds the model initialisation and the data order.")
    data_offset: int = Field(
        0, ge=0,
        description="Samples of the mixture stream skipped before step 0: a run continuing another on the same "
        "mixture and seed reads on from where that one stopped (a sweep's duration segments).",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16: bf16 compute with fp32 master weights and gradient reduction (FSDP2's mixed precision, "
        "the same in one process as in many); auto: bf16 on CUDA, fp32 on CPU.",
    )
    grad_sync: Literal["every_micro_batch", "last_micro_batch"] = Field(
        "every_micro_batch",
        description="Under FSDP: reduce-scatter gradients after every micro-batch (sharded gradients, least memory), or "
        "only after the last (fewer collectives; parameters and fp32 gradients stay unsharded over the micro-batches).",
    )
    compile: bool | None = Field(None, description="torch.compile the model (default: on CUDA only).")
    generation_flops: float = Field(
        0.0, ge=0, allow_inf_nan=False,
        description="FLOPs spent before the run sampling its replay corpus from the parent (`update --replay-source "
        "parent`); its version's FLOPs count them.",
    )
    prediction: PredictionRecord | None = Field(
        None, description="The held-out losses predicted for this run before it trained (`update --predict`, `--replay "
        "auto`; docs/prediction.md); its version records them beside the losses measured.",
    )
    peak_tflops: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="The device's dense peak in TFLOP/s, for MFU (default: known NVIDIA parts by exact name).",
    )
    activation_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    document_mask: bool = Field(
        False,
        description="Each token attends only to earlier tokens of its own document (position ids restart after every EOS), "
        "not to the documents packed before it in the sequence; see docs/training.md for the cost and why it is off.",
    )
    z_loss: ZLoss = Field(
        0.0,
        description="Add z_loss · mean(logsumexp(logits)²) over the trained tokens to the loss (0: off; PaLM and "
        "OLMo 2 use 1e-4); metrics.jsonl then logs it as z_loss beside the cross-entropy, logged as loss.",
    )
    log_every: PositiveInt = Field(10, description="Read the loss and gradient norm from the device, log them and print a progress line (when not on a terminal) every N steps.")
    trackers: list[TrackerName] = Field(
        default_factory=list, description="Experiment trackers beside metrics.jsonl, each writing under runs/NAME (offline)."
    )
    ema: float | None = Field(
        None, gt=0, lt=1,
        description="Keep an fp32 exponential moving average of the weights with this decay (e.g. 0.999; none: off), "
        "written at the end as version NAME-ema beside NAME (train/ema.py; docs/training.md).",
    )
    average: AverageConfig | None = Field(
        None, description="Also write the uniform average of the weights over the run's last steps as a release "
        "(`renewlm update --paradigm switch --release average` sets it on the trunk; docs/versions.md).",
    )
    max_bad_steps: PositiveInt = Field(
        5, description="Stop after this many non-finite losses in a row (each one skips its step)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        problems = []
        if (self.parent is None) == (self.preset is None):
            problems.append("give exactly one of parent (a version or folder) and preset (from scratch)")
        if self.preset is not None and self.tokenizer is None:
            problems.append("a preset run needs a tokenizer (a store tokenizer name or a folder)")
        if (self.steps is None) == (self.tokens is None):
            problems.append("give exactly one of steps and tokens")
        if self.batch_tokens % self.seq_len:
            problems.append(f"batch_tokens {self.batch_tokens} is not a multiple of seq_len {self.seq_len}")
        problems += _beyond_bounds(self)
        if self.load_optimizer and self.parent is None:
            problems.append("load_optimizer needs a parent trunk version")
        if (self.kind == "trunk" or self.paradigm == "switch") and (why := self.schedule.decays()):
            problems.append(
                f"a trunk never decays (it stays at its peak LR for releases to branch off), but this {self.schedule.name} "
                f"schedule {why}; use constant, or wsd with decay_fraction: 0"
            )
        if self.average is not None and self.kind != "trunk":
            problems.append("average releases a trunk's averaged weights, but this run is a release; set kind: trunk "
                            "(renewlm update --paradigm switch --release average does)")
        if self.average is not None and (self.steps is None) != (self.tokens is None) and self.average.steps > self.total_steps:
            problems.append(f"average.steps {self.average.steps} is longer than the run's {self.total_steps} steps; "
                            f"average at most its {self.total_steps} steps (--average-window)")
        if self.from_scratch and self.parent is None:
            problems.append("from_scratch needs a parent whose architecture to build (a preset run is from scratch already)")
        if self.from_scratch and self.load_optimizer:
            problems.append("from_scratch starts from random weights, so it cannot load the parent's optimizer state")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def batch_samples(self) -> int:
        return self.batch_tokens // self.seq_len

    @property
    def total_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return max(1, self.tokens // self.batch_tokens)


def _beyond_bounds(cfg: RunConfig) -> list[str]:
    """The run's sizes above renewlm's sane bounds (MAX_TOKENS, MAX_STEPS, MAX_SEQ_LEN), one sentence each."""
    problems = []
    if cfg.seq_len > MAX_SEQ_LEN:
        problems.append(f"seq_len {cfg.seq_len:,} is above the bound of {MAX_SEQ_LEN:,} tokens per sequence; check the number")
    if cfg.tokens is not None and cfg.tokens > MAX_TOKENS:
        given, bound = (f"{x:.3g}".replace("e+", "e") for x in (cfg.tokens, MAX_TOKENS))
        problems.append(f"tokens {given} is above the bound of {bound} tokens for one run (66 times Llama 3's 15T); "
                        f"check the number (2B is 2e9)")
    elif (cfg.steps is None) != (cfg.tokens is None) and cfg.total_steps > MAX_STEPS:
        problems.append(f"the run would take {cfg.total_steps:,} optimizer steps, above the bound of {MAX_STEPS:,} "
                        f"(100 times a 15T-token pre-training's); check the length, or raise batch_tokens")
    return problems


def load_run(path) -> RunConfig:
    return load(RunConfig, path)


def validate_run(data: object, where: str = "run") -> RunConfig:
    return validate(RunConfig, data, where)
