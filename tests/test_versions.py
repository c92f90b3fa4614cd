"""The version tree, its ledger, and the version commands."""

import json
import re

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.errors import ConfigError, CorruptError, StoreError
from renewlm.versions import (
    cost, export_version, import_version, lineage, lineage_corpora, list_versions, read_version, write_version,
)


@pytest.fixture
def chain(store):
    """v1 (pretrain on a) -> v2 (update on b) -> v3 (update on c, replaying a), tiny random models."""
    tok = load_tokenizer(store, "tok")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    for name, parent, corpora, tokens in (("v1", None, ["a"], 1000), ("v2", "v1", ["b"], 300), ("v3", "v2", ["c", "a"], 200)):
        write_version(store, name, model, tok, {"parents": [{"name": parent, "weight": 1.0}] if parent else [], "corpora": corpora, "tokens": tokens, "flops": 6.0 * tokens})
    return store


def test_import_overwrite_never_replaces_a_parent(chain, tmp_path):
    folder = tiny_folder(chain, tmp_path / "hf")
    with pytest.raises(StoreError, match="the parent of v2"):
        import_version(chain, "v1", folder, overwrite=True)
    assert read_version(chain, "v1").tokens == 1000


def test_lineage_corpora_and_cost(chain):
    assert [m.name for m in lineage(chain, "v3")] == ["v1", "v2", "v3"]
    assert lineage_corpora(chain, "v3") == ["a", "b", "c"]
    c = cost(chain, "v3")
    assert (c["tokens"], c["cumulative_tokens"], c["cumulative_flops"]) == (200, 1500, 9000.0)
    assert {m.name for m in list_versions(chain)} == {"v1", "v2", "v3"}
    meta = json.loads((chain.path("versions", "v2") / "version.json").read_text())
    assert meta["parents"] == [{"name": "v1", "weight": 1.0}] and len(meta["tokenizer_fingerprint"]) == 64 and meta["model"]["total"] > 0


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
    assert meta["kind"] == "import" and meta["parents"] == [] and meta["source"] == str(folder)
    with pytest.raises(StoreError, match="already exists"):
        import_version(store, "base", folder)


def tiny_folder(store, path, **config):
    tok = load_tokenizer(store, "tok")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, **config)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_import_records_pretraining_for_the_ledger_and_updates(store, tmp_path):
    from renewlm.model.flops import flops_per_token
    folder = tiny_folder(store, tmp_path / "hf", max_position_embeddings=512)
    import_version(store, "base", folder, pretrain_tokens=10**9, peak_lr=3e-3, final_lr=3e-4)
    meta = read_version(store, "base")
    config = LlamaConfig.from_pretrained(folder)
    assert meta.max_positions == 512 and meta.pretrain_seq_len == 512
    assert meta.tokens == 10**9 and meta.flops == flops_per_token(config, 512) * 10**9
    assert meta.schedule == {"name": "import", "peak_lr": 3e-3, "min_lr": 3e-4}
    assert (meta.peak_lr, meta.final_lr) == (3e-3, 3e-4)
    write_version(store, "v1", LlamaForCausalLM(config), load_tokenizer(store, "base"), {"parents": [{"name": "base", "weight": 1.0}], "tokens": 5, "flops": 1.0})
    assert cost(store, "v1")["cumulative_tokens"] == 10**9 + 5
    # what is not given is not recorded: no tokens, no schedule
    import_version(store, "bare", folder, pretrain_seq_len=128)
    bare = read_version(store, "bare")
    assert bare.tokens == 0 and bare.flops == 0.0 and bare.schedule is None and (bare.peak_lr, bare.final_lr) == (None, None)
    import_version(store, "peak", folder, peak_lr=1e-3, pretrain_tokens=7, pretrain_seq_len=128)
    peak = read_version(store, "peak")
    assert peak.schedule == {"name": "import", "peak_lr": 1e-3} and peak.flops == flops_per_token(config, 128) * 7


def test_import_caps_the_flops_sequence_at_8192(store, tmp_path):
    folder = tiny_folder(store, tmp_path / "hf", max_position_embeddings=131072)
    import_version(store, "long", folder, pretrain_tokens=1)
    assert read_version(store, "long").pretrain_seq_len == 8192


@pytest.mark.parametrize(
    "kwargs, message",
    [({"pretrain_tokens": -1}, "is negative"), ({"peak_lr": float("nan")}, "finite"), ({"final_lr": -1e-4}, "≥ 0"),
     ({"peak_lr": 1e-4, "final_lr": 1e-3}, "above --peak-lr"), ({"peak_lr": 0.0}, "cannot be a pre-training peak"),
     ({"pretrain_seq_len": 0}, "positive")],
)
def test_import_refuses_bad_pretraining_figures(store, tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        import_version(store, "base", tmp_path / "never-read", **kwargs)
    assert not store.exists("versions", "base")


def test_a_version_carries_a_manifest_and_is_verified_before_loading(chain):
    from renewlm.data.tokenizer import load_tokenizer as load_tok
    from renewlm.manifest import verify_manifest
    from renewlm.model.load import ModelSource, load_model

    path = chain.path("versions", "v2")
    verify_manifest(path, "v2")
    assert "version.json" in json.loads((path / "manifest.json").read_text())["files"]
    weights = path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptError, match="'model.safetensors' does not match"):
        load_model(ModelSource("version", "v2", path))
    load_tok(chain, "v2")  # the tokenizer's own files are intact: loading it hashes only them
    (path / "tokenizer.json").write_text((path / "tokenizer.json").read_text().replace('"<|endoftext|>"', '"<|planted|>"', 1))
    with pytest.raises(CorruptError, match="'tokenizer.json' (does not match|has 53510 bytes)"):
        load_tok(chain, "v2")
    with pytest.raises(CorruptError, match="version 'v2'.*(truncated or altered|does not match)"):
        export_version(chain, "v2", chain.root.parent / "out")
    assert not (chain.root.parent / "out").exists()


def test_a_version_without_a_manifest_says_how_to_seal_it(chain):
    from renewlm.manifest import write_manifest
    from renewlm.model.load import ModelSource, load_model

    path = chain.path("versions", "v1")
    (path / "manifest.json").unlink()
    for load in (lambda: load_tokenizer(chain, "v1"), lambda: load_model(ModelSource("version", "v1", path))):
        with pytest.raises(CorruptError, match=r"has no manifest.json.*write_manifest\('.*v1'\).*renewlm rm v1"):
            load()
    write_manifest(path)  # the fix the message gives
    load_model(ModelSource("version", "v1", path))


def test_export_overwrites_only_an_earlier_export(chain, tmp_path):
    out = tmp_path / "out"
    export_version(chain, "v1", out)
    assert not (out / "optimizer").exists() and json.loads((out / "version.json").read_text())["name"] == "v1"
    from renewlm.manifest import verify_manifest

    verify_manifest(out, "the export")  # an export carries a manifest of its own files
    export_version(chain, "v2", out, overwrite=True)
    assert json.loads((out / "version.json").read_text())["name"] == "v2"
    # a user's file inside the export makes it the user's folder: refused, kept
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an earlier renewlm export.*'notes.txt'"):
        export_version(chain, "v1", out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    with pytest.raises(StoreError, match="has no version.json"):
        export_version(chain, "v1", user, overwrite=True)
    assert (user / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("where", ["root", "inside", "version", "parent"])
def test_export_never_touches_the_store(chain, where):
    target = {"root": chain.root, "inside": chain.root / "versions" / "x", "version": chain.path("versions", "v1"),
              "parent": chain.root.parent}[where]
    before = sorted(p.relative_to(chain.root).as_posix() for p in chain.root.rglob("*"))
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="the store"):
            export_version(chain, "v1", target, overwrite=overwrite)
    assert sorted(p.relative_to(chain.root).as_posix() for p in chain.root.rglob("*")) == before


def edit_record(store, name, **fields):
    path = store.path("versions", name) / "version.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))
    return path


@pytest.mark.parametrize("parent, says", [
    ("v1", "version 'v1' names itself as its parent in .*v1/version.json, so its lineage never ends"),
    ("v3", "versions v\\d → v\\d → v\\d → v\\d are each other's ancestors in their version.json"),
])
def test_records_whose_parents_go_round_are_refused_not_walked_forever(cli, chain, tmp_path, capsys, parent, says):
    capsys.readouterr()  # the fixture's progress bars
    edit_record(chain, "v1", parents=[{"name": parent, "weight": 1.0}])
    with pytest.raises(CorruptError, match=says):
        lineage(chain, "v3")
    for args in (("versions",), ("show", "v2"), ("report", "--out", tmp_path / "report.html")):
        code, out, err = cli(*args, "--store", chain.root)
        assert code == 2 and re.search(says, err) and err.count("\n") == 1 and out == "", (args, err)
    assert not (tmp_path / "report.html").exists()
    assert cli("rm", "v1", "--force", "--store", chain.root)[0] == 0  # the fix the sentence gives
    assert [m.name for m in lineage(chain, "v3")] == ["v2", "v3"]


@pytest.mark.parametrize("field, value, says", [
    ("tokens", "300", "tokens: Input should be a valid number (got '300')"),
    ("parents", "v1", "parents: Input should be a valid list (got 'v1')"),
    ("corpora", [1], "corpora.0: Input should be a valid string (got 1)"),
    ("losses", {"b": "low"}, "losses.b: Input should be a valid number (got 'low')"),
])
def test_a_record_field_of_the_wrong_type_is_one_sentence_naming_file_and_field(cli, chain, capsys, field, value, says):
    capsys.readouterr()
    path = edit_record(chain, "v2", **{field: value})
    for args in (("versions",), ("show", "v3"), ("eval", "v3")):
        code, out, err = cli(*args, "--store", chain.root)
        assert code == 2 and err.startswith(f"error: {path}: {says}; correct the field") and err.count("\n") == 1, err
        assert "renewlm rm v2 --force" in err
    assert cli("rm", "v2", "--force", "--store", chain.root)[0] == 0
