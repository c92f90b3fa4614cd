"""`renewlm sample`: a version's continuation of a prompt, greedy or seeded sampling."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from renewlm.versions import import_version, load_version


@pytest.fixture
def version(store, tmp_path, capsys):
    """Version `base`: a tiny random Llama with 64 positions and the store's tokenizer."""
    folder = tmp_path / "hf"
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(store.path("tokenizers", "tok")).save_pretrained(folder)
    import_version(store, "base", folder)
    capsys.readouterr()
    return store


def test_greedy_is_the_argmax_continuation(cli, version):
    code, out, err = cli("sample", "base", "--prompt", "The class statement", "--max-new-tokens", "8", "--temperature", "0",
                         "--store", version.root)
    assert code == 0, err
    model, tok = load_version(version, "base")
    ids = tok("The class statement", return_tensors="pt")["input_ids"]
    prompt_length = ids.shape[1]
    with torch.no_grad():
        for _ in range(8):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
            if ids[0, -1] == tok.eos_token_id:
                break
    assert out == tok.decode(ids[0, prompt_length:], skip_special_tokens=True) + "\n"


def test_sampling_is_deterministic_with_a_seed(cli, version):
    def sample(seed, top_p="1.0"):
        code, out, err = cli("sample", "base", "--prompt", "def f(x):", "--max-new-tokens", "12", "--temperature", "1.5",
                             "--top-p", top_p, "--seed", seed, "--store", version.root)
        assert code == 0, err
        return out

    first = sample("1")
    assert first == sample("1") and first.strip()
    assert sample("2") != first
    # a nucleus smaller than any token's probability keeps only the most likely token: greedy decoding
    code, greedy, _ = cli("sample", "base", "--prompt", "def f(x):", "--max-new-tokens", "12", "--temperature", "0", "--store", version.root)
    assert sample("1", top_p="1e-9") == sample("2", top_p="1e-9") == greedy


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope", "--prompt", "Hi"], "no version named 'nope'"),
        (["base", "--prompt", "  "], "--prompt is empty"),
        (["base", "--prompt", "Hi", "--max-new-tokens", "0"], "--max-new-tokens 0 must be at least 1"),
        (["base", "--prompt", "Hi", "--temperature", "-0.5"], "--temperature -0.5 must be a finite number ≥ 0"),
        (["base", "--prompt", "Hi", "--top-p", "0"], "--top-p 0.0 must be in (0, 1]"),
        (["base", "--prompt", "Hi", "--max-new-tokens", "100"], "exceeds the model's 64 positions"),
    ],
)
def test_bad_input_is_one_sentence(cli, version, args, message):
    code, out, err = cli("sample", *args, "--store", version.root)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1 and message in lines[0], err
