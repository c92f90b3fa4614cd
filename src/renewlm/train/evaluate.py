"""Held-out loss of a model on corpora, during training and after it.

The held-out windows of a corpus are the first `eval_tokens // seq_len` sequences of its validation
split, in order, so every evaluation of every version reads the same tokens and losses compare.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from renewlm.data.stream import rank_indices
from renewlm.train.distributed import Dist


def token_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over a (batch, seq_len + 1) block, computed in fp32."""
    logits = model(input_ids=tokens[:, :-1]).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())


def heldout_windows(split, seq_len: int, max_tokens: int) -> int:
    """How many held-out sequences of a split are evaluated (0 if it holds less than one)."""
    return min((split.num_tokens - 1) // seq_len, max(1, max_tokens // seq_len)) if split.num_tokens > seq_len else 0


@torch.no_grad()
def heldout_loss(
    model: nn.Module,
    split,
    *,
    seq_len: int,
    max_tokens: int,
    micro_batch: int,
    dist_: Dist,
    autocast=contextlib.nullcontext,
) -> float | None:
    """Mean loss per token over the held-out windows, averaged over all processes; None if there are none."""
    n = heldout_windows(split, seq_len, max_tokens)
    if n == 0:
        return None
    mine = rank_indices(0, n, dist_.rank, dist_.world)
    # Every process must run the same number of forward passes (FSDP gathers parameters in each).
    passes = -(-(-(-n // dist_.world)) // micro_batch)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for p in range(passes):
        chunk = mine[p * micro_batch : (p + 1) * micro_batch]
        rows = chunk if len(chunk) else np.zeros(1, dtype=np.int64)  # a dummy pass, weighted 0
        block = np.stack([split.read(int(i) * seq_len, seq_len + 1) for i in rows]).astype(np.int64)
        tokens = torch.from_numpy(block).to(dist_.device, non_blocking=True)
        with autocast():
            loss = token_loss(model, tokens)
        weight = len(chunk) * seq_len
        total += float(loss) * weight
        count += weight
    model.train(was_training)
    total, count = dist_.sum([total, count])
    return total / count
