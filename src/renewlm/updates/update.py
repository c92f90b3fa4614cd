"""`renewlm update`: a new version from new data, with the papers' defaults filled in.

The short form builds a full RunConfig: the parent's tokenizer, sequence length and batch (or, for a
model with no record of them, the model's own maximum positions); one phase of the new corpora,
weighted by their token counts as if concatenated unless weights are given; replay taken from the
parent's lineage, split in proportion to the tokens each corpus was trained on (Ibrahim et al. split
replay across all earlier tasks); and a schedule recipe whose learning rates come from the parent's
own record when it has one.
"""

from __future__ import annotations

import math
from typing import Literal

from renewlm.data.corpus import Corpus
from renewlm.data.mixture import single
from renewlm.errors import ConfigError
from renewlm.model.load import model_positions
from renewlm.model.presets import DEFAULT_SEQ_LEN
from renewlm.optim.schedule import validate_schedule
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.versions import VersionRecord, lineage_corpora, lineage_corpus_tokens, read_version

Recipe = Literal["cosine", "wsd", "reuse", "constant"]

# Ibrahim et al. 2024 §1: η_max 3e-4 at 405M; used when the parent's own schedule is unknown.
DEFAULT_PEAK_LR = 3e-4
DEFAULT_BATCH_TOKENS = 2**19


def recipe_schedule(recipe: Recipe, lr: float) -> dict:
    """The schedule of a recipe at its top learning rate, with the papers' defaults."""
    if recipe == "cosine":  # re-warm + re-decay (Ibrahim et al.): 1% warmup, floor 0.1·peak
        return {"name": "cosine", "peak_lr": lr}
    if recipe == "wsd":  # warmup-stable-decay, 20% 1-sqrt decay (Hägele et al.)
        return {"name": "wsd", "peak_lr": lr}
    if recipe == "reuse":  # Parmar et al.: no warmup, cosine from the pretraining floor to 1/100 of it
        return {"name": "reuse", "start_lr": lr}
    return {"name": "constant", "lr": lr}  # no re-warm: hold the parent's floor


def trunk_schedule(lr: float, continues_trunk: bool) -> dict:
    """A main path never decays (Wang et al. 2024): it holds its peak LR. A new trunk warms up to it
    (1%, the re-warm of a weights-only start); a trunk continuing a trunk is already there."""
    if continues_trunk:
        return {"name": "constant", "lr": lr}
    return {"name": "wsd", "peak_lr": lr, "decay_fraction": 0.0}


def parse_data(items: list[str]) -> dict[str, float | None]:
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
                raise ConfigError(f"--data {item}: the weight after ':' must be a positive number, e.g. --data {name}:0.7")
        if name in out:
            raise ConfigError(f"--data names corpus {name!r} twice; give each corpus once")
        out[name] = value
    given = [w is not None for w in out.values()]
    if any(given) and not all(given):
        raise ConfigError("give a weight to every --data corpus (NAME:WEIGHT) or to none (weights by token count)")
    return out


def _train_tokens(store: Store, names: list[str]) -> dict[str, float]:
    weights = {}
    for name in names:
        tokens = Corpus.open(store, name, verify=False).train.num_tokens
        if tokens == 0:
            raise ConfigError(f"corpus {name!r} has no training tokens; prepare it from more text")
        weights[name] = float(tokens)
    return weights


def _replay_weights(store: Store, parent: str, data: list[str], replay: float, replay_from: list[str] | None) -> dict[str, float]:
    """Replay corpora and their weights: the tokens each was trained on along the lineage, where recorded."""
    if replay == 0:
        return {}
    if replay_from:
        old = list(dict.fromkeys(replay_from))
    else:
        trained = lineage_corpora(store, parent)
        old = [c for c in trained if c not in data]
        if not old:
            if trained:
                why = f"every corpus its lineage trained on ({', '.join(trained)}) is new data of this update"
            else:
                kind = read_version(store, parent).kind
                why = f"{'it was imported and ' if kind == 'import' else ''}it records no training corpora"
            raise ConfigError(
                f"--replay {replay:g} asks for old data, but {why}, so version {parent!r} has nothing to replay; "
                f"prepare a corpus like its old data with its tokenizer and name it with --replay-from"
            )
    missing = [c for c in old if not store.exists("corpora", c)]
    if missing:
        raise ConfigError(
            f"replay corpora {missing} of {parent!r}'s lineage are not in the store; prepare them again "
            f"or choose replay corpora with --replay-from"
        )
    if replay_from:
        return _train_tokens(store, old)
    seen = lineage_corpus_tokens(store, parent)
    if all(seen.get(c, 0) > 0 for c in old):
        return {c: seen[c] for c in old}
    return {c: 1.0 for c in old}  # older records do not say how much each corpus was trained on: split equally


def _micro_batch(batch_samples: int) -> int:
    """The largest micro-batch of at most 8 sequences that divides the global batch."""
    return max(m for m in range(1, 9) if batch_samples % m == 0)


def _positive(flag: str, value: int | None, unit: str) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{flag} must be a positive number of {unit} (got {value}); leave it out to take the parent's")


def update_shape(
    store: Store, parent: str, info: VersionRecord, *, tokens: int | None, steps: int | None, seq_len: int | None,
    batch_tokens: int | None, micro_batch: int | None,
) -> dict:
    """Length and batch of an update: given values checked (never replaced), the rest from the parent's
    record, or, for a model with no record of them, from the model's maximum positions."""
    _positive("--seq-len", seq_len, "tokens")
    _positive("--batch-tokens", batch_tokens, "tokens")
    _positive("--micro-batch", micro_batch, "sequences")
    _positive("--tokens", tokens, "tokens")
    _positive("--steps", steps, "steps")
    if (tokens is None) == (steps is None):
        raise ConfigError("give exactly one of --tokens and --steps for the update's length")
    if seq_len is None:
        seq_len = info.seq_len or min(DEFAULT_SEQ_LEN, model_positions(store.path("versions", parent)) or DEFAULT_SEQ_LEN)
    if batch_tokens is None:
        batch_tokens = info.batch_tokens
        if not batch_tokens or batch_tokens % seq_len:
            batch_tokens = max(1, DEFAULT_BATCH_TOKENS // seq_len) * seq_len
    micro_batch = micro_batch or _micro_batch(batch_tokens // seq_len or 1)
    return {"seq_len": seq_len, "batch_tokens": batch_tokens, "micro_batch": micro_batch, "tokens": tokens, "steps": steps}


def resolve_data(store: Store, data: list[str]) -> dict[str, float]:
    """Corpus weights of `--data` items: as given, or the corpora's training tokens (as if concatenated)."""
    weights = parse_data(data)
    missing = [c for c in weights if not store.exists("corpora", c)]
    if missing:
        have = ", ".join(store.names("corpora")) or "none"
        raise ConfigError(f"--data names corpora {missing} that are not in the store (it has: {have}); prepare them first")
    if any(w is None for w in weights.values()):
        return _train_tokens(store, list(weights))
    return weights


def update_config(
    store: Store,
    name: str,
    *,
    parent: str,
    data: list[str],
    then: list[str] | None = None,
    replay: float = 0.0,
    replay_from: list[str] | None = None,
    recipe: Recipe | None = None,
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
    switch_at: float | None = None,
) -> RunConfig:
    """The run of a `continue` update (weights only, re-warm + re-decay, replay from the lineage), or
    of a trunk (`kind="trunk"`). `then` is Parmar et al.'s second blend, from the reuse recipe's
    `switch` event to the end: LR at start/`switch_at` (default 5, the paper's best of 2, 5, 10, 50)."""
    store.path("runs", name)  # the name is checked (characters, length) before anything else
    if not (math.isfinite(replay) and 0 <= replay < 1):
        raise ConfigError(f"--replay must be a share of every batch in [0, 1) (got {replay}); e.g. --replay 0.05")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"--lr must be a positive learning rate (got {lr}); e.g. --lr 3e-4")
    info = read_version(store, parent)
    shape = update_shape(store, parent, info, tokens=tokens, steps=steps, seq_len=seq_len, batch_tokens=batch_tokens,
                         micro_batch=micro_batch)
    weights = resolve_data(store, data)
    second = resolve_data(store, then) if then else None
    if second is not None and recipe != "reuse":
        raise ConfigError(
            "--then starts a second blend at the reuse recipe's switch event (LR at start/5, Parmar et al. 2024); "
            "add --recipe reuse, or use a run file with phases for other schedules"
        )
    if switch_at is not None:
        if second is None:
            raise ConfigError("--switch-at sets where the second blend starts; give that blend with --then (and --recipe reuse)")
        # The reuse cosine falls from its start to its floor, so the switch ratio must lie strictly between.
        reuse = validate_schedule(recipe_schedule("reuse", 1.0))
        span = reuse.peak / reuse.floor
        if not (math.isfinite(switch_at) and 1 < switch_at < span):
            raise ConfigError(f"--switch-at R switches blends at LR = start/R, so R must lie in (1, {span:g}) (got {switch_at}); e.g. --switch-at 5")
    old = _replay_weights(store, parent, list(dict.fromkeys([*weights, *(second or {})])), replay, replay_from)

    peak, floor = info.peak_lr, info.final_lr
    trunk = kind == "trunk"
    if trunk and recipe is not None:
        raise ConfigError(
            "a trunk keeps the main path at its peak LR and never decays, so it takes no --recipe; "
            "releases branch off it (--paradigm switch, docs/versions.md)"
        )
    recipe = recipe or "cosine"
    if lr is None:
        lr = peak if trunk or recipe in ("cosine", "wsd") else floor
        if lr is None and recipe in ("cosine", "wsd"):
            lr = DEFAULT_PEAK_LR
        if lr is None:
            raise ConfigError(
                f"version {parent!r} does not record its schedule, so the {recipe} recipe's starting LR is "
                f"unknown; pass --lr (the pretraining minimum LR), or import it with --final-lr"
            )
    continues_trunk = trunk and info.kind == "trunk" and info.optimizer_state
    schedule = trunk_schedule(lr, continues_trunk) if trunk else recipe_schedule(recipe, lr)
    if switch_at is not None:
        schedule["switch_at_lr_ratio"] = 1 / switch_at

    mixture = single(weights, replay=old, replay_fraction=replay).model_dump(mode="json")
    if second is not None:
        mixture["phases"] = [{"corpora": weights, "end": "switch"}, {"corpora": second, "end": 1.0}]
    run = {
        "name": name,
        "parent": parent,
        "kind": kind,
        "load_optimizer": continues_trunk,
        "mixture": mixture,
        "schedule": validate_schedule(schedule).model_dump(mode="json"),
        **shape,
        "eval_every": eval_every,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
    }
    return validate_run(run, f"update {name}")
