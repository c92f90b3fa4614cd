"""Held-out loss of a model on corpora, during training and after it.

The held-out windows of a corpus are the first `max_tokens // seq_len` sequences of its validation
split, in order, so every evaluation of every version reads the same tokens and losses compare.
Every forward pass has the same shape, (micro_batch, seq_len): the last micro-batch is filled up
with repeated windows weighted 0, so a compiled model reuses one graph instead of compiling a
second one for the remainder (a recompile costs seconds to minutes on a GPU).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from renewlm.data.stream import rank_indices
from renewlm.distributed import Dist
from renewlm.model.loss import token_losses

def heldout_windows(split, seq_len: int, max_tokens: int) -> int:
    """How many held-out sequences of a split are evaluated (0 if it holds less than one)."""
    return min((split.num_tokens - 1) // seq_len, max(1, max_tokens // seq_len)) if split.num_tokens > seq_len else 0


@torch.no_grad()
def heldout_sums(
    model: nn.Module,
    split,
    *,
    seq_len: int,
    max_tokens: int,
    micro_batch: int,
    dist_: Dist,
    autocast=contextlib.nullcontext,
    document_eos: int | None = None,
) -> tuple[float, int]:
    """(summed loss, tokens) over the held-out windows of all processes; (0.0, 0) if there are none.

    `document_eos`: each token attends only to its own document, which ends at that id (as a run with
    `document_mask` trains); None, to everything before it in its window."""
    n = heldout_windows(split, seq_len, max_tokens)
    if n == 0:
        return 0.0, 0
    mine = rank_indices(0, n, dist_.rank, dist_.world)
    # Every process must run the same number of forward passes (FSDP gathers parameters in each).
    per_process = -(-n // dist_.world)  # ceiling divisions
    passes = -(-per_process // micro_batch)
    was_training = model.training
    model.eval()
    # Summed on the device and read once at the end: one host sync per corpus, not one per pass.
    total = torch.zeros((), dtype=torch.float64, device=dist_.device)
    count = 0
    for p in range(passes):
        chunk = mine[p * micro_batch : (p + 1) * micro_batch]
        rows = np.resize(chunk, micro_batch) if len(chunk) else np.zeros(micro_batch, dtype=np.int64)
        block = np.stack([split.read(int(i) * seq_len, seq_len + 1) for i in rows]).astype(np.int64)
        tokens = torch.from_numpy(block).to(dist_.device, non_blocking=True)
        with autocast():
            losses = token_losses(model, tokens, document_eos)
        total += losses[: len(chunk)].sum(dtype=torch.float64)  # the filler rows weigh 0
        count += len(chunk) * seq_len
    model.train(was_training)
    summed, count = dist_.sum([float(total), count])
    return summed, int(count)


def heldout_loss(model: nn.Module, split, **kwargs) -> float | None:
    """Mean loss per token over the held-out windows, averaged over all processes; None if there are none.

    Keyword arguments as `heldout_sums`: seq_len, max_tokens, micro_batch, dist_, autocast, document_eos.
    """
    total, count = heldout_sums(model, split, **kwargs)
    return total / count if count else None


def perplexity(loss: float) -> float:
    """exp(mean loss per token), the perplexity per token (inf where the loss overflows exp)."""
    return math.exp(loss) if loss < 709 else math.inf
