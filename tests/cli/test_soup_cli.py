"""`renewlm soup`: a linear soup, a sweep's table, and refusals as one line with exit 2."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.versions import write_version
from tests.conftest import prose_texts


@pytest.fixture
def two_versions(store, make_corpus):
    tok = load_tokenizer(store, "tok")
    for seed, name in enumerate(("base", "cpt")):
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=128)
        write_version(store, name, LlamaForCausalLM(config), tok, {})
    make_corpus("prose", prose_texts()[:30], val_fraction=0.2)
    return store


def test_soup_command(cli, two_versions):
    root = two_versions.root
    code, out, err = cli("soup", "s", "--from", "cpt,base", "--weights", "0.25", "--weights", "0.75", "--store", root)
    assert code == 0, err
    record = json.loads((two_versions.path("versions", "s") / "version.json").read_text())
    assert record["parents"] == [{"name": "cpt", "weight": 0.25}, {"name": "base", "weight": 0.75}]
    assert "version s (linear: cpt 0.25, base 0.75)" in out


def test_sweep_prints_its_table(cli, two_versions):
    code, out, err = cli(
        "soup", "sw", "--from", "cpt", "--base", "base", "--sweep", "0,0.5,1", "--data", "prose",
        "--seq-len", "32", "--eval-tokens", "512", "--store", two_versions.root,
    )
    assert code == 0, err
    assert "α" in out and "prose" in out and "mean" in out and "kept" in out
    record = json.loads((two_versions.path("versions", "sw") / "version.json").read_text())
    assert [r["alpha"] for r in record["sweep"]["rows"]] == [0.0, 0.5, 1.0] and set(record["losses"]) == {"prose"}


def test_the_old_on_flag_still_names_the_corpora_with_a_note(cli, two_versions):
    code, _, err = cli("soup", "sw-on", "--from", "cpt", "--base", "base", "--sweep", "0,1", "--on", "prose",
                       "--seq-len", "32", "--eval-tokens", "512", "--store", two_versions.root)
    assert code == 0 and err == "note: --on is renamed --data; the old spelling goes in the next release\n"
    record = json.loads((two_versions.path("versions", "sw-on") / "version.json").read_text())
    assert set(record["losses"]) == {"prose"}


@pytest.mark.parametrize(
    "args, words",
    [
        (["--from", "cpt"], "at least two models"),
        (["--from", "cpt,base", "--weights", "1,2,3"], "3 value(s) for 2"),
        (["--from", "cpt,base", "--weights", "0,0"], "sum to 0"),
        (["--from", "cpt,base", "--weights", "a,b"], "not a list of numbers"),
        (["--from", "cpt,ghost"], "no version named 'ghost'"),
        (["--from", "cpt,base", "--param", "density"], "NAME=VALUE"),
    ],
)
def test_refusals(cli, two_versions, args, words):
    before = sorted(p.name for p in (two_versions.root / "versions").iterdir())
    code, out, err = cli("soup", "s", *args, "--store", two_versions.root)
    assert code == 2 and err.startswith("error: ") and words in err and err.count("\n") == 1, err
    assert sorted(p.name for p in (two_versions.root / "versions").iterdir()) == before
