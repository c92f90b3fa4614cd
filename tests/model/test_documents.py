"""Document masking: a packed block's loss is its documents' losses run one by one, for every model type
renewlm allows it for; without the mask, and for a type it refuses, it is not."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForCausalLM

from renewlm.model.documents import DOCUMENT_MASK_MODEL_TYPES, document_positions
from renewlm.model.loss import token_loss, token_losses

VOCAB, EOS = 64, 1


def test_positions_restart_after_every_eos():
    inputs = torch.tensor([
        [5, 6, EOS, 7, 8, 9, EOS, EOS, 4],  # an empty document between two EOS is a document of its own
        [EOS, 2, 3, 4, 5, 6, 7, 8, EOS],    # a block may start or end with an EOS
        [2, 3, 4, 5, 6, 7, 8, 9, 10],       # one document across the whole block
    ])
    assert document_positions(inputs, EOS).tolist() == [
        [0, 1, 2, 0, 1, 2, 3, 0, 0],
        [0, 0, 1, 2, 3, 4, 5, 6, 7],
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
    ]


def tiny(model_type: str) -> torch.nn.Module:
    """A random two-layer model of `model_type`, loaded as renewlm loads one: SDPA, else its own attention."""
    sizes = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=8, max_position_embeddings=64, use_cache=False, pad_token_id=0,
                 bos_token_id=0, eos_token_id=EOS, n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **sizes), attn_implementation="sdpa").eval()
        except ValueError:  # an architecture without SDPA support (Gemma 2, Bloom): its default attention
            return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **sizes)).eval()


def packed_block() -> torch.Tensor:
    """Two rows of 25 tokens (24 predicted), with documents of 7, 8, 5 and 11, 13 tokens (their EOS included)."""
    torch.manual_seed(1)
    tokens = torch.randint(2, VOCAB, (2, 25))
    tokens[0, [6, 14, 19]] = EOS
    tokens[1, 10] = EOS
    return tokens


def one_by_one(model, tokens) -> torch.Tensor:
    """The loss of every next token, each document of the block run alone as its own sequence (positions from 0,
    nothing before it); the target after an EOS is the next document's first token, as in the packed block."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    losses = torch.empty(targets.shape)
    for row in range(len(tokens)):
        starts = [0] + [i + 1 for i in range(inputs.shape[1] - 1) if inputs[row, i] == EOS] + [inputs.shape[1]]
        for start, end in zip(starts, starts[1:]):
            logits = model(input_ids=inputs[row : row + 1, start:end]).logits[0].float()
            losses[row, start:end] = F.cross_entropy(logits, targets[row, start:end], reduction="none")
    return losses


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_a_masked_packed_batch_has_its_documents_loss_and_gradients(model_type):
    model, tokens = tiny(model_type).train(), packed_block()
    expected = one_by_one(model, tokens).mean()  # every document's tokens weigh alike: token-weighted
    expected.backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    masked = token_loss(model, tokens, EOS).cross_entropy
    masked.backward()
    torch.testing.assert_close(masked, expected, atol=1e-5, rtol=1e-5)
    for p, g in zip(model.parameters(), want):
        torch.testing.assert_close(p.grad, g, atol=1e-5, rtol=1e-4)
    with torch.no_grad():  # packed causal attention sees the documents before: another loss
        assert abs(float(token_loss(model, tokens).cross_entropy) - float(expected)) > 1e-3


@pytest.mark.parametrize("model_type", DOCUMENT_MASK_MODEL_TYPES)
def test_every_allowed_model_type_masks_per_document(model_type):
    model, tokens = tiny(model_type), packed_block()
    with torch.no_grad():
        torch.testing.assert_close(token_losses(model, tokens, EOS), one_by_one(model, tokens), atol=1e-5, rtol=1e-5)
        assert (token_losses(model, tokens) - one_by_one(model, tokens)).abs().max() > 1e-3


@pytest.mark.parametrize("model_type", ["bloom", "opt"])
def test_a_refused_model_type_does_not_mask_from_position_ids(model_type):
    # Bloom's ALiBi biases come from the token index, OPT's learned positions from the attention mask.
    assert model_type not in DOCUMENT_MASK_MODEL_TYPES
    model, tokens = tiny(model_type), packed_block()
    with torch.no_grad():
        assert (token_losses(model, tokens, EOS) - one_by_one(model, tokens)).abs().max() > 1e-3
