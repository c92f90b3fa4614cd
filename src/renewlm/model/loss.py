"""The language-modelling loss: next-token cross-entropy over a block of token ids.

Training and every evaluation compute it here, so a held-out loss and a training loss mean the same
thing. Logits are cast to fp32 before the softmax: under bf16 autocast a 32k-way log-softmax in bf16
loses about two decimal digits of the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def token_losses(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each next token of a (batch, seq_len + 1) block: a (batch, seq_len) fp32 tensor."""
    logits = model(input_ids=tokens[:, :-1]).logits
    targets = tokens[:, 1:]
    losses = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return losses.view(targets.shape)


def token_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over a (batch, seq_len + 1) block, computed in fp32."""
    logits = model(input_ids=tokens[:, :-1]).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
