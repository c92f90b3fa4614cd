"""Retraining from scratch: the baseline the papers measure updates against (Ibrahim et al.'s union
run, Wang et al.'s PTFS).

A `retrain` update builds the parent's architecture with random weights and its tokenizer, and
trains it on the union of every corpus its lineage trained on and the new data, each for as many tokens
as the lineage read of it as new data (or the update is to read), with the cosine schedule of the
lineage's pre-training. What a run read again of a corpus the lineage had trained on (replay, a
release's decay branch, a corpus read once more) is not data a retrain must see: counting it would
give the old corpora a larger share than they gave as data, and the new corpora less than the series read.
A series of retrains (PTFS: each release retrained from the one before) counts each corpus once, where
it was new, so the oldest data does not gain share with every release.
"""

from __future__ import annotations

from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import DEFAULT_PEAK_LR, resolve_data, update_shape
from renewlm.versions import lineage, lineage_new_data, read_version


def retrain_config(store: Store, request: UpdateRequest) -> RunConfig:
    """The run of a `retrain` update (the request has refused the flags a retrain does not take)."""
    parent = request.parent
    info = read_version(store, parent)
    shape = update_shape(store, request, info)
    new = resolve_data(store, request.data)
    chain = lineage(store, parent)
    imported = [m.name for m in chain if m.kind == "import"]
    if imported:  # its pre-training data was never in the store: a retrain could not read what it saw
        raise ConfigError(
            f"--paradigm retrain trains on all the data the lineage saw, but {imported[0]!r} was imported and its "
            f"pre-training data is not in the store; compare against a retrain with `renewlm train` and a run file instead"
        )
    old = lineage_new_data(chain)
    if not old:
        raise ConfigError(
            f"--paradigm retrain needs the data {parent!r}'s lineage trained on, but its records name no corpora "
            f"(an import keeps none); retrain with `renewlm train` and a run file naming stand-in corpora"
        )
    missing = [c for c in old if not store.exists("corpora", c)]
    if missing:
        raise ConfigError(
            f"--paradigm retrain reads every corpus {parent!r}'s lineage trained on, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} no longer in the store; prepare {'it' if len(missing) == 1 else 'them'} again"
        )
    update_tokens = shape["tokens"] or shape["steps"] * shape["batch_tokens"]
    weights = dict(old)
    total_new = sum(new.values())
    for corpus, w in new.items():
        weights[corpus] = weights.get(corpus, 0.0) + update_tokens * w / total_new
    peak = request.lr or next((m.peak_lr for m in chain if m.schedule), None) or DEFAULT_PEAK_LR
    run = {
        "name": request.name, "parent": parent, "from_scratch": True, "kind": "release",
        "mixture": {"phases": [{"corpora": weights}]},
        "schedule": {"name": "cosine", "peak_lr": peak}, "document_mask": info.document_mask,
        "seq_len": shape["seq_len"], "batch_tokens": shape["batch_tokens"], "micro_batch": shape["micro_batch"],
        "tokens": sum(old.values()) + update_tokens,
        "eval_every": request.eval_every, "checkpoint_every": request.checkpoint_every, "seed": request.seed,
    }
    return validate_run(run, f"retrain {request.name}")
