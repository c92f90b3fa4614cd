"""Growing a model to an extended vocabulary (`renewlm tokenizer extend`): new embedding and head rows
at the mean of the old ones, every old row unchanged.

The mean is the initialisation Hewitt 2021 ("Initializing new word embeddings for pretrained language
models") recommends and Mundra et al. 2024 (arXiv:2407.05841) find as good as the elaborate ones. It
keeps the model's output on old ids close to what it was: with the head's new rows at the mean of its
old rows, each new logit is the mean of the old logits at that position, so on old text the hidden
states and old logits are exactly those of before, and only the softmax's normaliser grows. The loss
of a token rises by log(1 + k·exp(mean logit − logsumexp of the old logits)) for k new rows, which by
Jensen's inequality (exp of a mean ≤ the mean of exp) is at most log(1 + k/V) for V old rows; far
less in practice, as the mean logit sits well below the logsumexp (docs/training.md measures it).
"""

from __future__ import annotations

import torch
from torch import nn

from renewlm.errors import ConfigError


def grow_vocabulary(model: nn.Module, vocab_size: int, old_ids: int) -> int:
    """Give `model` at least `vocab_size` embedding rows and set rows [old_ids, vocab_size) of its input
    embedding and output head to the mean of rows [0, old_ids); the number of rows set.

    Rows below `old_ids` stay bit for bit; rows past `vocab_size` (a model's padding) are left as they
    are; a head tied to the input embedding stays tied. `resize_token_embeddings` gets
    `mean_resizing=False`: its own initialisation draws from a normal around the mean, this one is exact.
    """
    rows = model.get_input_embeddings().weight.shape[0]
    if not 0 < old_ids <= min(rows, vocab_size):
        raise ConfigError(
            f"the tokenizer's extension record says its base has {old_ids} ids, but the model has {rows} embedding rows and "
            f"the tokenizer {vocab_size} ids; extend the model's own tokenizer again with `renewlm tokenizer extend`"
        )
    if vocab_size > rows:
        model.resize_token_embeddings(vocab_size, mean_resizing=False)
    head = model.get_output_embeddings()
    matrices = [model.get_input_embeddings().weight]
    if head is not None and head.weight is not matrices[0]:
        matrices.append(head.weight)
    if head is not None and getattr(head, "bias", None) is not None:
        matrices.append(head.bias)
    with torch.no_grad():
        for weight in matrices:
            mean = weight[:old_ids].to(torch.float64).mean(dim=0)
            weight[old_ids:vocab_size] = mean.to(weight.dtype)
    return vocab_size - old_ids
