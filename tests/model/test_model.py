import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.errors import ConfigError, InputError
from renewlm.model.flops import block_parameters, flops_per_token, parameter_counts
from renewlm.model.load import check_tokenizer, load_model, resolve_model_source
from renewlm.model.presets import PRESETS, padded_vocab, preset_config, preset_flops_per_token


@pytest.mark.parametrize(
    "name, vocab, low, high",
    [("tiny", 4096, 0.8e6, 1.2e6), ("small", 32000, 18e6, 26e6), ("125m", 32000, 120e6, 140e6),
     ("350m", 32000, 340e6, 420e6), ("1b", 128256, 1.2e9, 1.3e9)],
)
def test_presets_have_their_advertised_size(name, vocab, low, high):
    config = preset_config(name, vocab, bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert low <= parameter_counts(model)["total"] <= high
    assert config.vocab_size % 64 == 0 and config.vocab_size >= vocab


@pytest.mark.parametrize("name", PRESETS)
def test_a_presets_flops_from_its_shape_are_those_of_its_built_model(name):
    config = preset_config(name, 1000, bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    assert PRESETS[name].block_parameters() == block_parameters(model)
    assert preset_flops_per_token(name, 1000, 256) == flops_per_token(config, 256)


def test_llama_3_2_1b_shape():
    c = preset_config("1b", 128256, bos_token_id=0, eos_token_id=1)
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size) == (2048, 16, 32, 8, 8192)
    assert c.tie_word_embeddings and c.rope_parameters["rope_theta"] == 500000.0


def test_flops_per_token_is_6n_plus_attention():
    c = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False)
    d, L, f, V, T = 64, 3, 128, 1000, 256
    per_layer = 4 * d * d + 3 * d * f + 2 * d  # q, k, v, o; gate, up, down; two RMSNorms
    n = L * per_layer + d + V * d  # blocks, final norm, LM head (the input embedding is left out)
    assert flops_per_token(c, T) == 6 * n + 12 * L * d * T
    assert padded_vocab(1000) == 1024 and padded_vocab(1024) == 1024


def test_sources_and_their_errors(tokenizer_store, tmp_path):
    assert resolve_model_source(tokenizer_store, "tiny").kind == "preset"
    assert resolve_model_source(tokenizer_store, "preset:1b").ref == "1b"
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_model_source(tokenizer_store, "preset:huge")
    with pytest.raises(InputError, match="neither a version"):
        resolve_model_source(tokenizer_store, str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_model(resolve_model_source(tokenizer_store, str(empty)))
    (empty / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(InputError, match="no weights"):
        load_model(resolve_model_source(tokenizer_store, str(empty)))


def test_remote_code_needs_the_flag(tokenizer_store, tmp_path):
    folder = tmp_path / "custom"
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    data = json.loads((folder / "config.json").read_text())
    data["auto_map"] = {"AutoModelForCausalLM": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="--trust-remote-code"):
        load_model(resolve_model_source(tokenizer_store, str(folder)))


def test_preset_builds_from_the_tokenizer_and_mismatches_fail(tokenizer_store):
    tok = load_tokenizer(tokenizer_store, "tok")
    model, info = load_model(resolve_model_source(tokenizer_store, "tiny"), tokenizer=tok)
    assert info["kind"] == "preset" and model.config.vocab_size == 1024 and model.config.eos_token_id == tok.eos_token_id
    check_tokenizer(model, tok)
    small = LlamaForCausalLM(LlamaConfig(vocab_size=500, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(ConfigError, match="embeds only 500"):
        check_tokenizer(small, tok)


def test_a_written_version_loads_with_from_pretrained_and_gives_the_same_logits(tokenizer_store):
    from renewlm.versions import write_version

    tok = load_tokenizer(tokenizer_store, "tok")
    torch.manual_seed(0)
    model, _ = load_model(resolve_model_source(tokenizer_store, "tiny"), tokenizer=tok)
    path = write_version(tokenizer_store, "logits", model, tok, {"kind": "pretrain"})
    loaded = AutoModelForCausalLM.from_pretrained(path)
    assert AutoTokenizer.from_pretrained(path).eos_token_id == tok.eos_token_id
    x = torch.tensor([tok.encode("def spam(eggs): return eggs")])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    assert (path / "generation_config.json").is_file()
