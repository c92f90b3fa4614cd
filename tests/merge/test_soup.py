"""Soups: merged weights, the record, the sweep, the greedy soup, and every refusal leaving nothing behind."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.errors import ConfigError, RenewError
from renewlm.manifest import verify_manifest
from renewlm.merge import make_soup, methods
from renewlm.merge.tensors import Weights, write_file
from renewlm.distributed import Dist
from renewlm.eval.heldout import heldout_loss
from renewlm.versions import load_version, write_version
from tests.conftest import prose_texts

SHAPE = dict(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=128)
EVAL = dict(seq_len=32, eval_tokens=1024, micro_batch=4)


def tiny(seed: int, cls=LlamaForCausalLM, config=LlamaConfig, **shape):
    torch.manual_seed(seed)
    return cls(config(**{**SHAPE, **shape}))


@pytest.fixture
def soup_store(store):
    """Versions a, b, c (random tiny Llamas) and a corpus `prose` with a held-out split."""
    tok = load_tokenizer(store, "tok")
    for seed, name in enumerate("abc"):
        write_version(store, name, tiny(seed), tok, {})
    return store


@pytest.fixture
def prose(soup_store, make_corpus):
    return make_corpus("prose", prose_texts()[:40], val_fraction=0.2)


def weights(store, name):
    return load_file(store.path("versions", name) / "model.safetensors")


def versions_folder_state(store):
    return sorted(p.name for p in (store.root / "versions").iterdir())


def test_linear_soup_is_the_elementwise_mean(soup_store):
    make_soup(soup_store, "s", ["a", "b"])
    a, b, s = weights(soup_store, "a"), weights(soup_store, "b"), weights(soup_store, "s")
    assert s.keys() == a.keys()
    for k in a:
        assert s[k].dtype == a[k].dtype and torch.allclose(s[k], (a[k] + b[k]) / 2, rtol=0, atol=1e-7), k
    model, _ = load_version(soup_store, "s")  # manifest verified, transformers loads it
    assert torch.equal(model.model.embed_tokens.weight, s["model.embed_tokens.weight"])


def test_a_soup_does_not_take_its_parents_evaluations(soup_store):
    (soup_store.path("versions", "a") / "evaluations.json").write_text('{"format": 1, "heldout": {}}')  # `renewlm eval a`
    make_soup(soup_store, "s", ["a", "b"])
    assert not (soup_store.path("versions", "s") / "evaluations.json").exists()


def test_weighted_soup_and_its_record(soup_store):
    make_soup(soup_store, "s", ["a", "b"], weights=[1, 3])  # normalised to 0.25, 0.75
    a, b, s = weights(soup_store, "a"), weights(soup_store, "b"), weights(soup_store, "s")
    for k in a:
        assert torch.allclose(s[k], 0.25 * a[k] + 0.75 * b[k], rtol=0, atol=1e-7), k
    folder, parent = soup_store.path("versions", "s"), soup_store.path("versions", "a")
    record = json.loads((folder / "version.json").read_text())
    assert record["kind"] == "soup" and record["method"] == "linear"
    assert record["parents"] == [{"name": "a", "weight": 0.25}, {"name": "b", "weight": 0.75}]
    assert (record["steps"], record["tokens"], record["flops"], record["corpora"], record["optimizer_state"]) == (0, 0, 0.0, [], False)
    parent_record = json.loads((parent / "version.json").read_text())
    assert record["model"] == parent_record["model"] and record["tokenizer_fingerprint"] == parent_record["tokenizer_fingerprint"]
    for f in parent.iterdir():
        if f.name not in ("model.safetensors", "version.json", "manifest.json"):
            assert (folder / f.name).read_bytes() == f.read_bytes(), f.name
    verify_manifest(folder, "soup s")


def test_linear_with_a_base_gives_the_base_the_rest(soup_store):
    make_soup(soup_store, "s", ["a", "b"], base="c", weights=[0.5, 0.3])
    a, b, c, s = (weights(soup_store, n) for n in "abcs")
    for k in a:
        assert torch.allclose(s[k], 0.5 * a[k] + 0.3 * b[k] + 0.2 * c[k], rtol=0, atol=1e-7), k
    names = [(p["name"], round(p["weight"], 12)) for p in json.loads((soup_store.path("versions", "s") / "version.json").read_text())["parents"]]
    assert names == [("a", 0.5), ("b", 0.3), ("c", 0.2)]


def test_measured_losses_are_recorded(soup_store, prose):
    out = make_soup(soup_store, "s", ["a", "b"], on=["prose"], **EVAL)
    model, _ = load_version(soup_store, "s")
    want = heldout_loss(model, prose.val, seq_len=32, max_tokens=1024, micro_batch=4, dist_=Dist.single(torch.device("cpu")))
    assert out["record"].losses == {"prose": pytest.approx(want, rel=1e-6)}
    assert out["record"].evaluation == {"corpora": ["prose"], "seq_len": 32, "eval_tokens": 1024, "document_mask": False}


def own_loss(store, name, corpus):
    model, _ = load_version(store, name)
    return heldout_loss(model, corpus.val, seq_len=32, max_tokens=1024, micro_batch=4, dist_=Dist.single(torch.device("cpu")))


def test_sweep_ends_are_the_base_and_the_version(soup_store, prose):
    out = make_soup(soup_store, "s", ["a"], base="b", sweep=[0, 0.5, 1], on=["prose"], **EVAL)
    rows = {r["alpha"]: r["losses"] for r in out["sweep"]}
    assert rows[0.0]["prose"] == pytest.approx(own_loss(soup_store, "b", prose), rel=1e-6)
    assert rows[1.0]["prose"] == pytest.approx(own_loss(soup_store, "a", prose), rel=1e-6)
    best = min(rows, key=lambda a: rows[a]["mean"])
    record = out["record"]
    assert record.sweep["alpha"] == best == out["alpha"] and [r["alpha"] for r in record.sweep["rows"]] == [0.0, 0.5, 1.0]
    assert record.losses["prose"] == pytest.approx(own_loss(soup_store, "s", prose), rel=1e-6)
    assert {p.name: p.weight for p in record.parents} == {k: v for k, v in {"a": best, "b": 1 - best}.items() if v > 0}


def test_greedy_leaves_out_a_bad_version(soup_store, prose):
    tok = load_tokenizer(soup_store, "tok")
    model, _ = load_version(soup_store, "a")
    write_version(soup_store, "bad", model, tok, {}, state_dict={k: v * 100 for k, v in model.state_dict().items()})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    write_version(soup_store, "near", model, tok, {})
    out = make_soup(soup_store, "g", ["bad", "a", "near", "b"], greedy=True, on=["prose"], **EVAL)
    rows = out["greedy"]
    assert [r["version"] for r in rows][-1] == "bad" and not rows[-1]["added"]
    best = rows[0]["soup"]["mean"]
    for r in rows[1:]:  # a version joins only if the soup's mean loss goes down
        assert r["added"] == (r["soup"]["mean"] < best)
        best = r["soup"]["mean"] if r["added"] else best
    chosen = [r["version"] for r in rows if r["added"]]
    record = out["record"]
    assert [p.name for p in record.parents] == chosen and "bad" not in chosen
    assert all(p.weight == pytest.approx(1 / len(chosen)) for p in record.parents)
    assert record.losses["prose"] == pytest.approx(best, rel=1e-9)


def refusals(store):
    tok = load_tokenizer(store, "tok")
    write_version(store, "wide", tiny(5, hidden_size=48), tok, {})
    write_version(store, "deep", tiny(6, num_hidden_layers=2), tok, {})
    write_version(store, "mistral", tiny(7, MistralForCausalLM, MistralConfig), tok, {})
    write_version(store, "othertok", tiny(8), tok, {"tokenizer_fingerprint": "0" * 64})
    return [
        (dict(name="s", from_=["a"]), "at least two models"),
        (dict(name="s", from_=["a", "b"], weights=[1.0]), "1 value(s) for 2"),
        (dict(name="s", from_=["a", "b"], weights=[0, 0]), "sum to 0"),
        (dict(name="s", from_=["a", "b"], weights=[-1, 2]), "≥ 0"),
        (dict(name="s", from_=["a", "b"], weights=[float("nan"), 1]), "finite"),
        (dict(name="s", from_=["a", "b"], base="c", weights=[0.7, 0.6]), "at most 1"),
        (dict(name="s", from_=["a", "nope"]), "no version named 'nope'"),
        (dict(name="a", from_=["b", "c"]), "already exists"),
        (dict(name="s", from_=["a", "a"]), "named twice"),
        (dict(name="s", from_=["a", "wide"]), "only versions with the same shapes"),
        (dict(name="s", from_=["a", "deep"]), "does not"),
        (dict(name="s", from_=["a", "mistral"]), "one architecture"),
        (dict(name="s", from_=["a", "othertok"]), "different tokenizers"),
        (dict(name="s", from_=["a", "b"], method="nonsense"), "method"),
        (dict(name="s", from_=["a"], base="b", sweep=[0, 1.5], on=["prose"]), "between 0 and 1"),
        (dict(name="s", from_=["a", "b"], sweep=[0, 1], on=["prose"]), "one --from V, --base B"),
        (dict(name="s", from_=["a", "b"], greedy=True), "--greedy"),
        (dict(name="s", from_=["a", "b"], on=["nocorpus"]), "no corpus named 'nocorpus'"),
    ]


def test_every_refusal_leaves_nothing_behind(soup_store, prose):
    cases = refusals(soup_store)
    before = versions_folder_state(soup_store)
    for kwargs, words in cases:
        with pytest.raises(RenewError) as e:
            make_soup(soup_store, kwargs.pop("name"), kwargs.pop("from_"), **kwargs)
        assert words in str(e.value) and "\n" not in str(e.value), (kwargs, str(e.value))
        assert versions_folder_state(soup_store) == before


def test_methods_without_mergekit_are_refused_in_one_sentence(soup_store, monkeypatch):
    monkeypatch.setattr(methods, "_mergekit_methods", lambda: None)
    with pytest.raises(ConfigError, match="needs mergekit, which is not installed.*--method linear"):
        make_soup(soup_store, "s", ["a"], base="b", method="slerp")
    assert methods.available() == ["linear"]
    make_soup(soup_store, "s", ["a", "b"])  # linear needs nothing more
    assert soup_store.exists("versions", "s")


def test_mergekit_methods(soup_store):
    mergekit = pytest.importorskip("mergekit.merge_methods")
    make_soup(soup_store, "sl", ["a"], base="b", method="slerp", weights=[0.3])
    a, b, s = weights(soup_store, "a"), weights(soup_store, "b"), weights(soup_store, "sl")
    for k in a:
        want = mergekit.merge_tensors([a[k], b[k]], "slerp", parameters={"t": 0.3}, ids=["a", "b"], base_index=1)
        assert torch.allclose(s[k], want, rtol=0, atol=1e-7), k
    record = json.loads((soup_store.path("versions", "sl") / "version.json").read_text())
    assert record["parents"] == [{"name": "a", "weight": 0.3}, {"name": "b", "weight": 0.7}] and record["method"] == "slerp"
    out = make_soup(soup_store, "t", ["a", "b"], base="c", method="ties", weights=[1, 1], params={"density": "0.5"})
    assert out["record"].method_parameters == {"density": 0.5} and out["record"].parents[-1].model_dump() == {"name": "c", "weight": None, "role": "base"}
    load_version(soup_store, "t")
    with pytest.raises(ConfigError, match="needs --base"):
        make_soup(soup_store, "u", ["a", "b"], method="ties")
    with pytest.raises(ConfigError, match="not a parameter of method ties"):
        make_soup(soup_store, "u", ["a", "b"], base="c", method="ties", params={"dense": "1"})
    for value in ("nan", "inf"):  # mergekit accepts them, then fails half-way through the merge
        with pytest.raises(ConfigError, match=f"--param density={value} is not a finite number"):
            make_soup(soup_store, "u", ["a", "b"], base="c", method="ties", params={"density": value})
    assert not soup_store.exists("versions", "u")


def test_tensor_files_round_trip(tmp_path):
    torch.manual_seed(0)
    tensors = {"w": torch.randn(3, 5), "h": torch.randn(7).to(torch.bfloat16), "i": torch.arange(4), "z": torch.zeros(0, 2), "s": torch.tensor(2.5)}
    from safetensors.torch import save_file

    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    source = Weights(tmp_path)
    out = tmp_path / "copy"
    out.mkdir()
    write_file(out / "model.safetensors", source.tensors, source.metadata["model.safetensors"], source.read)
    source.close()
    back = load_file(out / "model.safetensors")
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) and back[k].dtype == tensors[k].dtype for k in tensors)
