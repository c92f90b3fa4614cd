"""The evaluation seam: an evaluator has a name, a cadence and a call that returns named numbers.

The training loop holds a list of evaluators and, at each step, asks each whether it is due; the
results of one step are one dict `{evaluator name: {number name: value}}`, written as one record
of metrics.jsonl. The held-out evaluator is named `eval` by default, the key metrics.jsonl has
always used for held-out losses, so readers of older runs read newer ones alike.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable

from torch import nn

from renewlm.eval.cadence import Cadence, Every
from renewlm.distributed import Dist
from renewlm.eval.heldout import heldout_loss


class Evaluator(ABC):
    """Base of every evaluator: `name` keys its results, `cadence` says when it runs."""

    name: str
    cadence: Cadence

    def due(self, step: int, total: int) -> bool:
        return self.cadence.due(step, total)

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Named numbers measured on `model` (its training mode and RNG state left as they were)."""


class HeldOut(Evaluator):
    """Held-out loss per corpus: `{corpus: mean loss per token}` (corpora too small to hold one window are left out).
    With `document_mask`, attention stays within each document, ended by its corpus's EOS id."""

    def __init__(
        self,
        corpora: dict,
        *,
        seq_len: int,
        max_tokens: int,
        micro_batch: int,
        dist_: Dist,
        autocast=contextlib.nullcontext,
        cadence: Cadence | None = None,
        name: str = "eval",
        document_mask: bool = False,
    ):
        self.name = name
        self.cadence = cadence if cadence is not None else Every(every=0)
        self.corpora = corpora
        self.document_mask = document_mask
        self.options = {"seq_len": seq_len, "max_tokens": max_tokens, "micro_batch": micro_batch, "dist_": dist_, "autocast": autocast}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        losses = {}
        for name, corpus in self.corpora.items():
            eos = corpus.eos_id if self.document_mask else None
            loss = heldout_loss(model, corpus.val, document_eos=eos, **self.options)
            if loss is not None:
                losses[name] = loss
        return losses


def evaluate_due(evaluators: Iterable[Evaluator], model: nn.Module, step: int, total: int) -> dict[str, dict[str, float]]:
    """The results of every evaluator due at `step` of `total`, by name; {} when none is due."""
    return {e.name: e.evaluate(model) for e in evaluators if e.due(step, total)}
