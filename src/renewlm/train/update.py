"""`renewlm update`: a new version from new data, with the papers' defaults filled in.

The short form builds a full RunConfig: the parent's tokenizer, sequence length and batch; one phase
of the new corpus; replay taken from the parent's lineage (every corpus any ancestor trained on,
split equally, as Ibrahim et al. split replay across earlier tasks); and a schedule recipe whose
learning rates come from the parent's own schedule when it was trained with renewlm.
"""

from __future__ import annotations

from typing import Literal

from renewlm.data.mixture import single
from renewlm.errors import ConfigError
from renewlm.optim.schedule import validate_schedule
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.versions import lineage_corpora, read_version

Recipe = Literal["cosine", "wsd", "reuse", "constant"]

# Ibrahim et al. 2024 §1: η_max 3e-4 at 405M; used when the parent's own schedule is unknown.
DEFAULT_PEAK_LR = 3e-4
DEFAULT_BATCH_TOKENS = 2**19
DEFAULT_SEQ_LEN = 2048


def parent_lrs(parent: dict) -> tuple[float | None, float | None]:
    """(peak, floor) of the schedule the parent was trained with, where version.json records it."""
    schedule = parent.get("schedule") or {}
    peak = schedule.get("peak_lr") or schedule.get("start_lr") or schedule.get("lr")
    floor = schedule.get("min_lr")
    if floor is None and schedule.get("name") == "constant":
        floor = schedule.get("lr")
    if floor is None and peak is not None and schedule.get("name") == "cosine":
        floor = 0.1 * peak
    return peak, floor


def recipe_schedule(recipe: Recipe, lr: float) -> dict:
    """The schedule of a recipe at its top learning rate, with the papers' defaults."""
    if recipe == "cosine":  # re-warm + re-decay (Ibrahim et al.): 1% warmup, floor 0.1·peak
        return {"name": "cosine", "peak_lr": lr}
    if recipe == "wsd":  # warmup-stable-decay, 20% 1-sqrt decay (Hägele et al.)
        return {"name": "wsd", "peak_lr": lr}
    if recipe == "reuse":  # Parmar et al.: no warmup, cosine from the pretraining floor to 1/100 of it
        return {"name": "reuse", "start_lr": lr}
    return {"name": "constant", "lr": lr}  # no re-warm: hold the parent's floor


def update_config(
    store: Store,
    name: str,
    *,
    parent: str,
    data: list[str],
    replay: float = 0.0,
    replay_from: list[str] | None = None,
    recipe: Recipe = "cosine",
    lr: float | None = None,
    tokens: int | None = None,
    steps: int | None = None,
    seq_len: int | None = None,
    batch_tokens: int | None = None,
    micro_batch: int | None = None,
    eval_every: int = 0,
    checkpoint_every: int = 0,
    seed: int = 0,
    kind: Literal["release", "trunk"] = "release",
) -> RunConfig:
    info = read_version(store, parent)
    if replay > 0:
        old = replay_from or [c for c in lineage_corpora(store, parent) if c not in data]
        if not old:
            raise ConfigError(
                f"--replay {replay} asks for old data, but version {parent!r} records no training corpora "
                f"other than {data}; prepare a corpus like its old data and name it with --replay-from"
            )
        missing = [c for c in old if not store.exists("corpora", c)]
        if missing:
            raise ConfigError(
                f"replay corpora {missing} of {parent!r}'s lineage are not in the store; prepare them again "
                f"or choose replay corpora with --replay-from"
            )
    else:
        old = []
    peak, floor = parent_lrs(info)
    if lr is None:
        lr = (floor if recipe in ("reuse", "constant") else peak) or (
            DEFAULT_PEAK_LR if recipe in ("cosine", "wsd") else None
        )
        if lr is None:
            raise ConfigError(
                f"version {parent!r} does not record its schedule, so the {recipe} recipe's starting LR is "
                f"unknown; pass --lr (the pretraining minimum LR)"
            )
    mixture = single({c: 1.0 for c in data}, replay={c: 1.0 for c in old}, replay_fraction=replay)
    seq_len = seq_len or info.get("seq_len") or DEFAULT_SEQ_LEN
    batch_tokens = batch_tokens or info.get("batch_tokens") or DEFAULT_BATCH_TOKENS
    if (tokens is None) == (steps is None):
        raise ConfigError("give exactly one of --tokens and --steps for the update's length")
    run = {
        "name": name,
        "parent": parent,
        "kind": kind,
        "mixture": mixture.model_dump(mode="json"),
        "schedule": validate_schedule(recipe_schedule(recipe, lr)).model_dump(mode="json"),
        "seq_len": seq_len,
        "batch_tokens": batch_tokens,
        "micro_batch": micro_batch or min(8, batch_tokens // seq_len),
        "tokens": tokens,
        "steps": steps,
        "eval_every": eval_every,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
    }
    return validate_run(run, f"update {name}")
