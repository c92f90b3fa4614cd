"""`import` keeps a folder's tokenizer files byte for byte, for every architecture a user brings.

Each folder holds a tiny random model and the suite's BPE tokenizer under the tokenizer class that
architecture's real checkpoints name: transformers rebuilds Qwen2 and GPT-NeoX tokenizers with their
own normalizer and pre-tokenizer, so re-saving them would change tokenizer.json.
"""

import json
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from renewlm.data import prepare
from renewlm.data.tokenizer import TOKENIZER_FILES, fingerprint, load_tokenizer
from renewlm.versions import import_version, read_version, write_version
from tests.conftest import prose_texts, write_jsonl

BLOCK = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 1024}
ARCHITECTURES = {
    "gpt2": ({"n_positions": 64}, "GPT2Tokenizer"),
    "llama": ({"intermediate_size": 32, "max_position_embeddings": 64}, "LlamaTokenizer"),
    "qwen2": ({"intermediate_size": 32, "max_position_embeddings": 64}, "Qwen2Tokenizer"),
    "mistral": ({"intermediate_size": 32, "max_position_embeddings": 64}, "LlamaTokenizer"),
    "gpt_neox": ({"intermediate_size": 32, "max_position_embeddings": 64}, "GPTNeoXTokenizer"),
    "opt": ({"ffn_dim": 32, "word_embed_proj_dim": 16, "max_position_embeddings": 64}, "GPT2Tokenizer"),
    "phi": ({"intermediate_size": 32, "max_position_embeddings": 64}, "CodeGenTokenizer"),
    # GemmaTokenizer rebuilds a sentencepiece-style BPE that needs an <unk> this byte-level vocabulary lacks
    "gemma": ({"intermediate_size": 32, "num_key_value_heads": 1, "head_dim": 8, "max_position_embeddings": 64}, "PreTrainedTokenizerFast"),
}


def model_folder(path, architecture, tokenizer_dir):
    """A save_pretrained folder of `architecture` with the suite's tokenizer under its usual class."""
    extra, tokenizer_class = ARCHITECTURES[architecture]
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture, **BLOCK, **extra)).save_pretrained(path)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copyfile(tokenizer_dir / name, path / name)
    config = json.loads((path / "tokenizer_config.json").read_text())
    (path / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": tokenizer_class}, indent=2))
    return path


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_import_and_children_keep_the_tokenizer_files(store, tokenizer_dir, tmp_path, architecture):
    folder = model_folder(tmp_path / architecture, architecture, tokenizer_dir)
    files = [n for n in TOKENIZER_FILES if (folder / n).is_file()]
    assert "tokenizer.json" in files and "tokenizer_config.json" in files
    base = import_version(store, "base", folder)
    for name in files:
        assert (base / name).read_bytes() == (folder / name).read_bytes(), f"{architecture}: {name} was rewritten"
    # a corpus prepared with the folder's own tokenizer speaks the version's ids
    corpus = prepare(store, "c", [write_jsonl(tmp_path / "c.jsonl", prose_texts()[:5])], str(folder), val_fraction=0.0, workers=1)
    meta = read_version(store, "base")
    assert corpus.tokenizer_fingerprint == meta.tokenizer_fingerprint == fingerprint(load_tokenizer(store, "base"))
    assert meta.max_positions == 64
    # a version trained from it (the loop's call) carries the same files
    model = AutoModelForCausalLM.from_pretrained(base)
    child = write_version(store, "child", model, load_tokenizer(store, "base"), {"parents": [{"name": "base", "weight": 1.0}]})
    for name in files:
        assert (child / name).read_bytes() == (folder / name).read_bytes(), f"{architecture}: the child's {name} differs"


def test_a_changed_tokenizer_is_saved_not_copied(store, tokenizer_dir, tmp_path):
    """Copying is only for a tokenizer that still gives the ids of the files it came from."""
    folder = model_folder(tmp_path / "llama", "llama", tokenizer_dir)
    import_version(store, "base", folder)
    tok = load_tokenizer(store, "base")
    tok.add_tokens(["<|new|>"])
    model = AutoModelForCausalLM.from_pretrained(store.path("versions", "base"))
    child = write_version(store, "child", model, tok, {"parents": [{"name": "base", "weight": 1.0}]})
    assert "<|new|>" in (child / "tokenizer.json").read_text()
    assert fingerprint(load_tokenizer(store, "child")) == fingerprint(tok) != fingerprint(load_tokenizer(store, "base"))
