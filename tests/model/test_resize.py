import copy
import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from renewlm.errors import ConfigError
from renewlm.model.resize import grow_vocabulary


def _model(architecture: str, vocab: int = 500):
    torch.manual_seed(0)
    if architecture == "gpt2":  # a head tied to the input embedding
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=16, n_layer=1, n_head=2, n_positions=64))
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, tie_word_embeddings=False))


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_new_rows_are_the_mean_and_old_ids_give_the_same_hidden_states_and_logits(architecture):
    model = _model(architecture).eval()
    ids = torch.randint(0, 500, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids, labels=ids, output_hidden_states=True)
    old = {k: v.clone() for k, v in model.state_dict().items()}
    assert grow_vocabulary(model, 600, 500) == 100
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert tied == (architecture == "gpt2") and model.config.vocab_size == 600
    for matrix in {id(m.weight): m.weight for m in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
        assert matrix.shape[0] == 600
        assert torch.equal(matrix[500:], matrix[:500].double().mean(0).float().expand(100, -1))
    for key, value in model.state_dict().items():
        assert torch.equal(value[: old[key].shape[0]], old[key]), key  # every old row (and every other weight) bit for bit
    with torch.no_grad():
        after = model(ids, labels=ids, output_hidden_states=True)
    assert all(torch.equal(a, b) for a, b in zip(before.hidden_states, after.hidden_states))
    assert torch.equal(after.logits[..., :500], before.logits)
    # Each new logit is the mean old logit, so the loss rises by log(1 + k·exp(mean − logsumexp)), at most log(1 + k/V).
    old_logits = before.logits[:, :-1].double()
    rise = torch.log1p(100 * torch.exp(old_logits.mean(-1) - torch.logsumexp(old_logits, -1))).mean().item()
    assert after.loss.item() - before.loss.item() == pytest.approx(rise, rel=1e-4)
    assert 0 < rise < math.log1p(100 / 500)


def test_rows_a_model_already_has_are_set_in_place_and_its_padding_is_left_alone():
    model = _model("llama", vocab=640)  # 640 rows for a 500-id tokenizer (as Qwen2 pads its vocabulary)
    embedding = model.get_input_embeddings().weight
    padding = embedding[600:].clone()
    assert grow_vocabulary(model, 600, 500) == 100
    assert model.get_input_embeddings().weight.shape[0] == 640 and torch.equal(embedding[600:], padding)
    assert torch.equal(embedding[550], embedding[:500].double().mean(0).float())


def test_growing_below_the_old_ids_is_refused():
    with pytest.raises(ConfigError, match="its base has 600 ids, but the model has .* embedding rows and the tokenizer 550 ids"):
        grow_vocabulary(_model("gpt2"), 550, 600)
