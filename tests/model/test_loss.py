"""The chunked loss: the plain formula's loss and gradients (the z-loss's too), holding the full logits
only where they fit one chunk."""

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    CohereConfig, CohereForCausalLM, GPT2Config, GPT2LMHeadModel, Gemma2Config, Gemma2ForCausalLM, LlamaConfig,
    LlamaForCausalLM,
)

from renewlm.model import loss as loss_module
from renewlm.model.loss import Head, Loss, _liger, chunked_cross_entropy, plain_token_losses, token_loss, token_losses

VOCAB = 101


def _grads(params):
    return [p.grad.clone() for p in params]


def _logits(hidden, weight, b, scale, softcap):
    z = F.linear(hidden, weight, b)
    z = z * scale if scale else z
    return softcap * torch.tanh(z / softcap) if softcap else z


# rows=4: 4 chunks (the last short), each recomputed in backward; None: all 13 rows in one chunk, kept.
@pytest.mark.parametrize("rows", [4, None])
@pytest.mark.parametrize("scale, softcap", [(None, None), (0.25, None), (None, 3.0), (2.0, 1.5)])
@pytest.mark.parametrize("bias", [False, True])
def test_chunked_cross_entropy_has_the_plain_losses_and_gradients(scale, softcap, bias, rows):
    torch.manual_seed(0)
    hidden = torch.randn(13, 8, requires_grad=True)
    weight = torch.randn(VOCAB, 8, requires_grad=True)
    b = torch.randn(VOCAB, requires_grad=True) if bias else None
    targets = torch.randint(0, VOCAB, (13,))
    upstream = torch.rand(13)  # any weighting of the tokens, not only a mean

    plain = F.cross_entropy(_logits(hidden, weight, b, scale, softcap), targets, reduction="none")
    (plain * upstream).sum().backward()
    params = [hidden, weight] + ([b] if bias else [])
    want = _grads(params)
    for p in params:
        p.grad = None

    chunked, _ = chunked_cross_entropy(hidden, Head(weight, b, scale, softcap), targets, rows=rows)
    (chunked * upstream).sum().backward()
    torch.testing.assert_close(chunked, plain, atol=1e-6, rtol=1e-6)
    for got, expected in zip(_grads(params), want):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("rows", [4, None])
@pytest.mark.parametrize("scale, softcap", [(None, None), (2.0, 1.5)])
def test_the_chunked_z_loss_has_the_gradient_of_the_plain_formula(scale, softcap, rows):
    """z_loss · mean(lse²) through the chunked loss: its d/dz, 2·lse·softmax, against autograd's."""
    torch.manual_seed(0)
    hidden = torch.randn(13, 8, requires_grad=True)
    weight = torch.randn(VOCAB, 8, requires_grad=True)
    targets = torch.randint(0, VOCAB, (13,))
    z_loss = 0.3  # large, so a wrong z-loss gradient shows far above the tolerance

    z = _logits(hidden, weight, None, scale, softcap)
    plain_lse = torch.logsumexp(z, dim=-1)
    (F.cross_entropy(z, targets) + z_loss * plain_lse.square().mean()).backward()
    want = _grads([hidden, weight])
    hidden.grad = weight.grad = None

    losses, lse = chunked_cross_entropy(hidden, Head(weight, None, scale, softcap), targets, rows=rows)
    (losses.mean() + z_loss * lse.square().mean()).backward()
    torch.testing.assert_close(lse, plain_lse, atol=1e-6, rtol=1e-6)
    for got, expected in zip(_grads([hidden, weight]), want):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-6)


def _models():
    torch.manual_seed(0)
    small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    yield "llama-tied", LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=True))
    yield "llama-untied", LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=False))
    yield "gpt2", GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64))
    yield "gemma2-softcap", Gemma2ForCausalLM(Gemma2Config(**small, num_key_value_heads=2, head_dim=8, final_logit_softcapping=2.0))
    yield "cohere-scale", CohereForCausalLM(CohereConfig(**small, logit_scale=0.5))


@pytest.mark.parametrize("keep", [False, True], ids=["recomputed", "kept"])
@pytest.mark.parametrize("name, model", list(_models()), ids=lambda x: x if isinstance(x, str) else "")
def test_token_loss_matches_the_plain_formula_and_its_gradients(name, model, keep, monkeypatch):
    monkeypatch.setattr(loss_module, "CHUNK_ELEMENTS", VOCAB * 5)  # 5 tokens a chunk: 18 tokens make 4 chunks
    if not keep:
        monkeypatch.setattr(loss_module, "KEEP_ELEMENTS", 0)  # else the 18 tokens' logits fit and are kept
    model.eval()  # GPT-2's dropout would draw other masks in the two forward passes
    model.zero_grad(set_to_none=True)  # each model serves both parametrisations
    tokens = torch.randint(0, VOCAB, (2, 10))
    plain = plain_token_losses(model, tokens)
    plain.mean().backward()
    want = _grads(model.parameters())
    model.zero_grad(set_to_none=True)

    loss = token_loss(model, tokens)
    assert loss.z_loss is None  # no z-loss asked for: none computed
    loss.total.backward()
    assert loss_module._CHECKED[model] is True  # the chunked path ran, not the fallback
    torch.testing.assert_close(loss.cross_entropy, plain.mean(), atol=1e-6, rtol=1e-6)
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
    chunked, plain = token_loss(model, tokens).cross_entropy, plain_token_losses(model, tokens).mean()
    assert chunked.dtype == torch.float32
    assert chunked.item() == pytest.approx(plain.item(), abs=1e-2)


def test_a_model_on_the_plain_formula_gets_the_same_z_loss_as_the_chunked_one():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4)
    chunked, doubled = LlamaForCausalLM(config), _Doubled(config)
    doubled.load_state_dict(chunked.state_dict())
    tokens = torch.randint(0, VOCAB, (2, 10))
    got = token_loss(chunked, tokens, z_loss=1e-2)
    assert loss_module._CHECKED[chunked] is True
    with torch.no_grad():
        logits = chunked(input_ids=tokens[:, :-1]).logits.float()
        want = 1e-2 * torch.logsumexp(logits, dim=-1).square().mean()
        # The doubled head falls back to the plain formula: its z-loss is that of its own (doubled) logits.
        fallback = token_loss(doubled, tokens, z_loss=1e-2)
    assert loss_module._CHECKED[doubled] is False
    torch.testing.assert_close(got.z_loss, want, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(fallback.z_loss, 1e-2 * torch.logsumexp(2 * logits, dim=-1).square().mean(), atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(got.total, got.cross_entropy + got.z_loss)


@pytest.mark.parametrize("shape", ["tuple", "dataclass"])
def test_liger_is_asked_for_its_z_loss_and_its_loss_split_into_cross_entropy_and_z_loss(shape):
    """liger-kernel's loss includes its z-loss (`lse_square_scale`); renewlm logs the two apart."""
    from dataclasses import dataclass

    @dataclass
    class CrossEntropyOutput:  # liger-kernel's newer return type
        loss: torch.Tensor
        z_loss: torch.Tensor | None = None

    calls = []

    def fused(hidden, weight, targets, bias, *, reduction, softcap, accum_dtype, lse_square_scale, return_z_loss):
        calls.append((lse_square_scale, return_z_loss, accum_dtype))
        z = F.linear(hidden, weight, bias)
        ce, lse = F.cross_entropy(z, targets), torch.logsumexp(z, dim=-1)
        zl = lse_square_scale * lse.square().mean()
        if not return_z_loss:
            return ce + zl
        return (ce + zl, zl) if shape == "tuple" else CrossEntropyOutput(ce + zl, zl)

    torch.manual_seed(0)
    hidden, weight = torch.randn(6, 8), torch.randn(VOCAB, 8, requires_grad=True)
    targets = torch.randint(0, VOCAB, (6,))
    off = _liger(fused, hidden, Head(weight, None), targets, 0.0)
    on = _liger(fused, hidden, Head(weight, None), targets, 1e-2)
    assert calls == [(0.0, False, torch.float32), (1e-2, True, torch.float32)]
    assert isinstance(off, Loss) and off.z_loss is None
    z = F.linear(hidden, weight)
    torch.testing.assert_close(on.cross_entropy, F.cross_entropy(z, targets))
    torch.testing.assert_close(on.z_loss, 1e-2 * torch.logsumexp(z, dim=-1).square().mean())
    assert not on.z_loss.requires_grad and on.total.requires_grad  # gradients through liger's total only
