"""Held-out loss: the loss by hand, perplexity = exp(loss), padded micro-batches, one compiled graph."""

import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.distributed import Dist
from renewlm.eval.heldout import (
    heldout_loss,
    heldout_sums,
    heldout_windows,
    perplexity,
)
from renewlm.model.loss import token_loss, token_losses


class Split:
    """A validation split in memory, read as the corpus reads it."""

    def __init__(self, tokens):
        self.tokens = np.asarray(tokens, dtype=np.uint16)
        self.num_tokens = len(self.tokens)

    def read(self, start, length):
        return self.tokens[start : start + length]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


@torch.no_grad()
def hand_loss(model, rows):
    """Mean of −log softmax(logits)[next token], one position at a time, in float64."""
    total, count = 0.0, 0
    for row in rows:
        logits = model(input_ids=torch.tensor([row[:-1]])).logits[0].double()
        for pos, target in enumerate(row[1:]):
            total -= float(logits[pos, target] - torch.logsumexp(logits[pos], 0))
            count += 1
    return total / count


def test_loss_and_perplexity_of_a_hand_made_batch(model):
    rows = [[1, 2, 3, 4, 5], [5, 6, 7, 8, 9], [9, 10, 11, 12, 13]]  # held-out windows share their edge token
    expected = hand_loss(model, rows)
    with torch.no_grad():
        assert float(token_loss(model, torch.tensor(rows)).cross_entropy) == pytest.approx(expected, rel=1e-5)
        assert token_losses(model, torch.tensor(rows)).shape == (3, 4)
    split = Split(range(1, 14))
    loss = heldout_loss(model, split, seq_len=4, max_tokens=12, micro_batch=2, dist_=Dist.single(torch.device("cpu")))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert perplexity(loss) == pytest.approx(math.exp(expected), rel=1e-5)
    assert perplexity(1e4) == math.inf


@pytest.mark.parametrize("micro_batch", [1, 2, 3, 7])
def test_the_filler_rows_of_the_last_micro_batch_weigh_nothing(model, micro_batch):
    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 50, 5 * 8 + 1))
    windows = [split.read(i * 8, 9).tolist() for i in range(5)]
    total, count = heldout_sums(model, split, seq_len=8, max_tokens=40, micro_batch=micro_batch, dist_=Dist.single(torch.device("cpu")))
    assert count == 5 * 8
    assert total / count == pytest.approx(hand_loss(model, windows), rel=1e-5)
    assert model.training is False


def test_windows_and_a_split_too_small():
    assert heldout_windows(Split(range(100)), seq_len=8, max_tokens=1000) == 12  # (100 − 1) // 8
    assert heldout_windows(Split(range(100)), seq_len=8, max_tokens=20) == 2
    tiny = Split(range(8))
    assert heldout_loss(None, tiny, seq_len=8, max_tokens=64, micro_batch=2, dist_=Dist.single(torch.device("cpu"))) is None


def test_a_compiled_model_compiles_one_graph_for_every_pass(model):
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    compiled = LlamaForCausalLM(model.config)
    compiled.load_state_dict(model.state_dict())
    compiled.compile(backend=counting_backend)
    split = Split(np.arange(7 * 8 + 1) % 50)  # 7 windows: passes of 3, 3 and 1 (+2 filler rows)
    for _ in range(2):
        heldout_loss(compiled, split, seq_len=8, max_tokens=56, micro_batch=3, dist_=Dist.single(torch.device("cpu")))
    assert len(graphs) == 1
    torch._dynamo.reset()
