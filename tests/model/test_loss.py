"""The chunked loss: the plain formula's loss and gradients, without ever holding the full logits."""

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    CohereConfig, CohereForCausalLM, GPT2Config, GPT2LMHeadModel, Gemma2Config, Gemma2ForCausalLM, LlamaConfig,
    LlamaForCausalLM,
)

from renewlm.model import loss as loss_module
from renewlm.model.loss import Head, chunked_cross_entropy, plain_token_losses, token_loss, token_losses

VOCAB = 101


def _grads(params):
    return [p.grad.clone() for p in params]


@pytest.mark.parametrize("scale, softcap", [(None, None), (0.25, None), (None, 3.0), (2.0, 1.5)])
@pytest.mark.parametrize("bias", [False, True])
def test_chunked_cross_entropy_has_the_plain_losses_and_gradients(scale, softcap, bias):
    torch.manual_seed(0)
    hidden = torch.randn(13, 8, requires_grad=True)
    weight = torch.randn(VOCAB, 8, requires_grad=True)
    b = torch.randn(VOCAB, requires_grad=True) if bias else None
    targets = torch.randint(0, VOCAB, (13,))
    upstream = torch.rand(13)  # any weighting of the tokens, not only a mean

    z = F.linear(hidden, weight, b)
    z = z * scale if scale else z
    z = softcap * torch.tanh(z / softcap) if softcap else z
    plain = F.cross_entropy(z, targets, reduction="none")
    (plain * upstream).sum().backward()
    params = [hidden, weight] + ([b] if bias else [])
    want = _grads(params)
    for p in params:
        p.grad = None

    chunked = chunked_cross_entropy(hidden, Head(weight, b, scale, softcap), targets, rows=4)  # 4 chunks, the last short
    (chunked * upstream).sum().backward()
    torch.testing.assert_close(chunked, plain, atol=1e-6, rtol=1e-6)
    for got, expected in zip(_grads(params), want):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def _models():
    torch.manual_seed(0)
    small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    yield "llama-tied", LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=True))
    yield "llama-untied", LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=False))
    yield "gpt2", GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64))
    yield "gemma2-softcap", Gemma2ForCausalLM(Gemma2Config(**small, num_key_value_heads=2, head_dim=8, final_logit_softcapping=2.0))
    yield "cohere-scale", CohereForCausalLM(CohereConfig(**small, logit_scale=0.5))


@pytest.mark.parametrize("name, model", list(_models()), ids=lambda x: x if isinstance(x, str) else "")
def test_token_loss_matches_the_plain_formula_and_its_gradients(name, model, monkeypatch):
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", VOCAB * 5)  # 5 tokens a chunk: 18 tokens make 4 chunks
    model.eval()  # GPT-2's dropout would draw other masks in the two forward passes
    tokens = torch.randint(0, VOCAB, (2, 10))
    plain = plain_token_losses(model, tokens)
    plain.mean().backward()
    want = _grads(model.parameters())
    model.zero_grad(set_to_none=True)

    loss = token_loss(model, tokens)
    loss.backward()
    assert loss_module._CHECKED[model] is True  # the chunked path ran, not the fallback
    torch.testing.assert_close(loss, plain.mean(), atol=1e-6, rtol=1e-6)
    for got, expected in zip(_grads(model.parameters()), want):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(token_losses(model, tokens), plain.detach(), atol=1e-6, rtol=1e-6)


class _Doubled(LlamaForCausalLM):
    """A head that does something the chunked loss does not know of."""

    def forward(self, input_ids=None, logits_to_keep=0, **kwargs):
        out = super().forward(input_ids=input_ids, logits_to_keep=logits_to_keep, **kwargs)
        out.logits = out.logits * 2
        return out


def test_an_unknown_logit_transform_is_caught_and_gets_the_plain_formula():
    torch.manual_seed(0)
    model = _Doubled(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4))
    tokens = torch.randint(0, VOCAB, (2, 10))
    got = token_losses(model, tokens)
    assert loss_module._CHECKED[model] is False
    torch.testing.assert_close(got, plain_token_losses(model, tokens))


def test_bf16_chunked_loss_is_within_bf16_rounding_of_the_plain_one():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4)).to(torch.bfloat16)
    tokens = torch.randint(0, VOCAB, (2, 10))
    chunked, plain = token_loss(model, tokens), plain_token_losses(model, tokens).mean()
    assert chunked.dtype == torch.float32
    assert chunked.item() == pytest.approx(plain.item(), abs=1e-2)
