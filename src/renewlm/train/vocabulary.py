"""A run whose tokenizer extends its parent's (`renewlm tokenizer extend`): the ids the parent's embeddings
grow from, checked before anything is built (model/resize.py grows them)."""

from __future__ import annotations

from renewlm.data.tokenizer import fingerprint, load_tokenizer
from renewlm.data.tokenizer_extend import base_ids, read_extension
from renewlm.errors import RenewError
from renewlm.model.load import ModelSource
from renewlm.store import Store
from renewlm.train.config import RunConfig


def vocabulary_growth(cfg: RunConfig, store: Store, source: ModelSource | None, tokenizer, problems: list[str]) -> int | None:
    """The parent tokenizer's ids when the run's tokenizer is a `renewlm tokenizer extend` of it (the
    parent's embeddings then grow to the new ids, model/resize.py); None when there is nothing to grow."""
    if cfg.tokenizer is None or tokenizer is None or source is None or source.kind == "preset":
        return None
    try:
        parent = fingerprint(load_tokenizer(store, cfg.parent))
    except RenewError:
        return None  # a parent without a tokenizer: the run's own tokenizer is checked against the model's rows
    if parent == fingerprint(tokenizer):
        return None
    old_ids = base_ids(tokenizer, parent)
    if old_ids is None and read_extension(tokenizer.name_or_path) is not None:
        problems.append(
            f"tokenizer {cfg.tokenizer!r} extends another tokenizer than the one of parent {cfg.parent!r}, so its ids mean other "
            f"strings to this model; extend the parent's own: `renewlm tokenizer extend NEW --from {cfg.parent} --input ...`"
        )
    elif old_ids is not None and not 0 < old_ids <= len(tokenizer):
        problems.append(
            f"tokenizer {cfg.tokenizer!r} records a base of {old_ids} ids but holds {len(tokenizer)}; its extension record "
            f"is damaged: extend the parent's tokenizer again with `renewlm tokenizer extend NEW --from {cfg.parent}`"
        )
    elif old_ids is not None and cfg.load_optimizer:
        problems.append(
            f"load_optimizer cannot carry {cfg.parent!r}'s optimizer state into embeddings grown to tokenizer {cfg.tokenizer!r}'s "
            f"new ids; set load_optimizer: false (a switch update continuing a trunk carries it: grow the vocabulary "
            f"with `renewlm update --paradigm continue --tokenizer {cfg.tokenizer}` first, then switch from that release)"
        )
    return old_ids
