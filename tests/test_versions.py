"""The version tree, its ledger, and the version commands."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.errors import StoreError
from renewlm.versions import cost, import_version, lineage, lineage_corpora, list_versions, write_version


@pytest.fixture
def chain(store):
    """v1 (pretrain on a) -> v2 (update on b) -> v3 (update on c, replaying a), tiny random models."""
    tok = load_tokenizer(store, "tok")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    for name, parent, corpora, tokens in (("v1", None, ["a"], 1000), ("v2", "v1", ["b"], 300), ("v3", "v2", ["c", "a"], 200)):
        write_version(store, name, model, tok, {"parent": parent, "corpora": corpora, "tokens": tokens, "flops": 6.0 * tokens})
    return store


def test_lineage_corpora_and_cost(chain):
    assert [m["name"] for m in lineage(chain, "v3")] == ["v1", "v2", "v3"]
    assert lineage_corpora(chain, "v3") == ["a", "b", "c"]
    c = cost(chain, "v3")
    assert (c["tokens"], c["cumulative_tokens"], c["cumulative_flops"]) == (200, 1500, 9000.0)
    assert {m["name"] for m in list_versions(chain)} == {"v1", "v2", "v3"}
    meta = json.loads((chain.path("versions", "v2") / "version.json").read_text())
    assert meta["parent"] == "v1" and len(meta["tokenizer_fingerprint"]) == 64 and meta["model"]["total"] > 0


def test_version_commands(cli, chain, tmp_path):
    code, out, err = cli("versions", "--store", chain.root)
    assert code == 0 and out.index("v1") < out.index("v2") < out.index("v3"), err
    code, out, _ = cli("show", "v3", "--store", chain.root)
    assert code == 0 and "v1 → v2 → v3" in out and "1,500 tokens" in out
    code, _, err = cli("export", "v2", "--to", tmp_path / "out", "--store", chain.root)
    assert code == 0 and (tmp_path / "out" / "model.safetensors").is_file(), err
    code, _, err = cli("export", "v2", "--to", tmp_path / "out", "--store", chain.root)
    assert code == 2 and "--overwrite" in err
    code, _, err = cli("rm", "v2", "--store", chain.root)
    assert code == 2 and "parent of v3" in err
    code, _, err = cli("show", "nope", "--store", chain.root)
    assert code == 2 and "no version named 'nope'" in err and "v1, v2, v3" in err
    assert cli("rm", "v3", "--store", chain.root)[0] == 0
    assert cli("rm", "v2", "--store", chain.root)[0] == 0
    assert not chain.exists("versions", "v2")


def test_import_an_hf_folder(cli, store, tmp_path):
    tok = load_tokenizer(store, "tok")
    folder = tmp_path / "hf"
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)).save_pretrained(folder)
    tok.save_pretrained(folder)
    code, _, err = cli("import", "base", "--from", folder, "--store", store.root)
    assert code == 0, err
    meta = json.loads((store.path("versions", "base") / "version.json").read_text())
    assert meta["kind"] == "import" and meta["parent"] is None and meta["source"] == str(folder)
    with pytest.raises(StoreError, match="already exists"):
        import_version(store, "base", folder)
