"""Searching for the best soup on held-out data: an interpolation sweep and the greedy soup.

Candidates are evaluated in memory: one model is built from the first parent and each candidate's
weights are loaded into it tensor by tensor, so nothing is written until the best one is chosen.
The held-out windows are those of training (eval/heldout.py), so a soup's losses compare with
those its parents recorded when they were trained at the same seq_len (and, like the first parent's
run, with or without `document_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from renewlm.data.corpus import Corpus
from renewlm.distributed import Dist
from renewlm.errors import ConfigError
from renewlm.eval.heldout import heldout_loss, heldout_windows
from renewlm.merge.soup import Parent, Recipe, load_into
from renewlm.store import Store

# Without a seq_len from the first parent's training record: long enough for a real context, short
# enough that a small held-out split still holds a few windows.
DEFAULT_SEQ_LEN = 512


@dataclass
class HeldOut:
    """The held-out splits a soup is measured on, and how."""

    corpora: list[Corpus]
    seq_len: int
    eval_tokens: int
    micro_batch: int
    document_mask: bool = False  # attention within each document, as the first parent trained

    def settings(self) -> dict:
        return {"corpora": [c.name for c in self.corpora], "seq_len": self.seq_len, "eval_tokens": self.eval_tokens,
                "document_mask": self.document_mask}


def open_heldout(store: Store, names: list[str], parent: Parent, *, seq_len: int | None, eval_tokens: int, micro_batch: int) -> HeldOut:
    """The corpora of --on, checked: in the store, tokenized with the soup's tokenizer, each holding a
    held-out sequence at least."""
    if len(set(names)) != len(names):
        raise ConfigError(f"--on names a corpus twice ({', '.join(names)}); name each once")
    if eval_tokens <= 0 or micro_batch <= 0:
        raise ConfigError("--eval-tokens and --micro-batch must be positive")
    limit = parent.record.max_positions
    seq_len = seq_len or parent.record.seq_len or min(DEFAULT_SEQ_LEN, limit or DEFAULT_SEQ_LEN)
    if seq_len <= 0 or (limit and seq_len > limit):
        raise ConfigError(f"--seq-len {seq_len} must be between 1 and the {limit} positions of {parent.name!r}")
    corpora = [Corpus.open(store, n) for n in names]
    for c in corpora:
        if c.tokenizer_fingerprint != parent.record.tokenizer_fingerprint:
            raise ConfigError(
                f"corpus {c.name!r} was tokenized with another tokenizer than version {parent.name!r}; "
                f"prepare it with `--tokenizer {parent.name}` to measure the soup on it"
            )
        if heldout_windows(c.val, seq_len, eval_tokens) == 0:
            raise ConfigError(
                f"corpus {c.name!r} holds {c.val.num_tokens} held-out tokens, fewer than one sequence of {seq_len + 1}; "
                f"pass a smaller --seq-len or prepare it with a larger --val-fraction"
            )
    return HeldOut(corpora, seq_len, eval_tokens, micro_batch, parent.record.document_mask)


def device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def measure(model: nn.Module, heldout: HeldOut) -> dict[str, float]:
    """Held-out loss per corpus, then `mean` over corpora."""
    dist_ = Dist.single(next(model.parameters()).device)
    losses = {
        c.name: heldout_loss(model, c.val, seq_len=heldout.seq_len, max_tokens=heldout.eval_tokens, micro_batch=heldout.micro_batch,
                             dist_=dist_, document_eos=c.eos_id if heldout.document_mask else None)
        for c in heldout.corpora
    }
    return {**losses, "mean": sum(losses.values()) / len(losses)}


def build_model(parent: Parent) -> nn.Module:
    """The first parent's model (its manifest checked again as it loads), on the GPU where there is one."""
    from renewlm.model.load import ModelSource, load_model

    model, _ = load_model(ModelSource("version", parent.name, parent.folder))
    return model.to(device())


def evaluate(model: nn.Module, recipe: Recipe, heldout: HeldOut) -> dict[str, float]:
    load_into(model, recipe)
    return measure(model, heldout)


def sweep(model: nn.Module, recipes: dict[float, Recipe], heldout: HeldOut) -> tuple[float, list[dict]]:
    """Each α's held-out losses, and the α with the lowest mean (the smaller α on a tie: closer to the base)."""
    rows = [{"alpha": alpha, "losses": evaluate(model, recipe, heldout)} for alpha, recipe in recipes.items()]
    best = min(rows, key=lambda r: (r["losses"]["mean"], r["alpha"]))
    return best["alpha"], rows


def greedy(model: nn.Module, parents: list[Parent], heldout: HeldOut, recipe_of) -> tuple[list[Parent], list[dict]]:
    """Wortsman et al. 2022 (model soups, §3 "greedy soup"): rank the versions by their own held-out
    loss, start from the best, and add each next one to the uniform average only if the mean held-out
    loss of the average goes down. `recipe_of(parents)` is the uniform linear soup of `parents`."""
    alone = {p.name: evaluate(model, recipe_of([p]), heldout) for p in parents}
    order = sorted(parents, key=lambda p: alone[p.name]["mean"])
    chosen, best = [order[0]], alone[order[0].name]
    rows = [{"version": order[0].name, "alone": alone[order[0].name], "soup": best, "added": True}]
    for p in order[1:]:
        losses = evaluate(model, recipe_of([*chosen, p]), heldout)
        added = losses["mean"] < best["mean"]
        if added:
            chosen, best = [*chosen, p], losses
        rows.append({"version": p.name, "alone": alone[p.name], "soup": losses, "added": added})
    return chosen, rows
