"""`renewlm update`: a new version from new data, with the papers' defaults filled in.

The short form builds a full RunConfig: the parent's tokenizer, sequence length and batch (or, for a
model with no record of them, the model's own maximum positions); one phase of the new corpora,
weighted by their token counts as if concatenated unless weights are given; replay taken from the
parent's lineage, split in proportion to the tokens each corpus was trained on (Ibrahim et al. split
replay across all earlier tasks); and a schedule recipe whose learning rates come from the parent's
own record when it has one.
"""

from __future__ import annotations

from typing import Literal

from renewlm.data.corpus import Corpus
from renewlm.data.mixture import single
from renewlm.errors import ConfigError
from renewlm.model.load import model_positions
from renewlm.model.presets import DEFAULT_SEQ_LEN
from renewlm.optim.schedule import validate_schedule
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.updates.request import Recipe, UpdateRequest, parse_data
from renewlm.versions import VersionRecord, lineage_corpora, lineage_corpus_tokens, read_version

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


def update_shape(store: Store, request: UpdateRequest, info: VersionRecord) -> dict:
    """Length and batch of an update: given values as given (the request refused any below 1), the rest from
    the parent's record, or, for a model with no record of them, from the model's maximum positions."""
    seq_len, batch_tokens = request.seq_len, request.batch_tokens
    if seq_len is None:
        positions = model_positions(store.path("versions", request.parent))
        seq_len = info.seq_len or min(DEFAULT_SEQ_LEN, positions or DEFAULT_SEQ_LEN)
    if batch_tokens is None:
        batch_tokens = info.batch_tokens
        if not batch_tokens or batch_tokens % seq_len:
            batch_tokens = max(1, DEFAULT_BATCH_TOKENS // seq_len) * seq_len
    micro_batch = request.micro_batch or _micro_batch(batch_tokens // seq_len or 1)
    return {"seq_len": seq_len, "batch_tokens": batch_tokens, "micro_batch": micro_batch, "tokens": request.tokens,
            "steps": request.steps}


def resolve_data(store: Store, items: list[str], flag: str = "--data") -> dict[str, float]:
    """Corpus weights of `--data` items: as given, or the corpora's training tokens (as if concatenated)."""
    weights = parse_data(items, flag)
    missing = [c for c in weights if not store.exists("corpora", c)]
    if missing:
        have = ", ".join(store.names("corpora")) or "none"
        raise ConfigError(f"{flag} names corpora {missing} that are not in the store (it has: {have}); prepare them first")
    if any(w is None for w in weights.values()):
        return _train_tokens(store, list(weights))
    return weights


def update_config(store: Store, request: UpdateRequest, *, kind: Literal["release", "trunk"] = "release") -> RunConfig:
    """The run of a `continue` update (weights only, re-warm + re-decay, replay from the lineage or sampled from
    the parent: with `--replay-source parent` the replay corpus is sampled here, or reused), or of a trunk
    (`kind="trunk"`). `request.then` is Parmar et al.'s second blend, from the reuse recipe's `switch`
    event to the end: LR at start/`switch_at` (default 5, the paper's best of 2, 5, 10, 50)."""
    store.path("runs", request.name)  # the name is checked (characters, length) before anything else
    if request.replay == "auto":
        raise ConfigError("--replay auto is a share chosen by prediction before the run is built "
                          "(renewlm.updates.predict.predict_request); give the share itself here")
    if kind == "trunk" and request.recipe is not None:
        raise ConfigError(
            "a trunk keeps the main path at its peak LR and never decays, so it takes no --recipe; "
            "releases branch off it (--paradigm switch, docs/versions.md)"
        )
    info = read_version(store, request.parent)
    shape = update_shape(store, request, info)
    weights = resolve_data(store, request.data)
    second = resolve_data(store, request.then, "--then") if request.then else None
    new = list(dict.fromkeys([*weights, *(second or {})]))
    generation_flops = 0.0
    if request.replay_source == "parent":  # sampled now, or reused (updates/generated.py)
        from renewlm.updates.generated import generated_replay

        sampled, generation_flops = generated_replay(store, request, shape, list(weights))
        old = {sampled: 1.0}
    else:
        old = _replay_weights(store, request.parent, new, request.replay, request.replay_from)
    mixture = single(weights, replay=old, replay_fraction=request.replay).model_dump(mode="json")
    if second is not None:
        mixture["phases"] = [{"corpora": weights, "end": "switch"}, {"corpora": second, "end": 1.0}]
    continues_trunk = kind == "trunk" and info.kind == "trunk" and info.optimizer_state
    run = {
        "name": request.name,
        "parent": request.parent,
        "tokenizer": request.tokenizer,
        "kind": kind,
        "load_optimizer": continues_trunk,
        "mixture": mixture,
        "schedule": update_schedule(request, info, kind, continues_trunk),
        "document_mask": info.document_mask,  # attention as the parent learned it: within documents, or across
        **shape,
        "eval_every": request.eval_every,
        "checkpoint_every": request.checkpoint_every,
        "seed": request.seed,
        "generation_flops": generation_flops,
    }
    return validate_run(run, f"update {request.name}")


def update_schedule(request: UpdateRequest, info: VersionRecord, kind: str, continues_trunk: bool) -> dict:
    """The schedule of the recipe (a trunk: its held peak), at `--lr` or at the LR the parent's record implies:
    its peak for a re-warm (cosine, wsd) and a trunk, its floor for a recipe that starts there (reuse, constant)."""
    trunk = kind == "trunk"
    recipe = request.recipe or "cosine"
    lr = request.lr
    if lr is None:
        lr = info.peak_lr if trunk or recipe in ("cosine", "wsd") else info.final_lr
        if lr is None and recipe in ("cosine", "wsd"):
            lr = DEFAULT_PEAK_LR
        if lr is None:
            raise ConfigError(
                f"version {request.parent!r} does not record its schedule, so the {recipe} recipe's starting LR is "
                f"unknown; pass --lr (the pretraining minimum LR), or import it with --final-lr"
            )
    schedule = trunk_schedule(lr, continues_trunk) if trunk else recipe_schedule(recipe, lr)
    if request.switch_at is not None:  # else the reuse schedule's own default, LR = start/5
        schedule["switch_at_lr_ratio"] = 1 / request.switch_at
    return validate_schedule(schedule).model_dump(mode="json")
