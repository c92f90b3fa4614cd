from renewlm.data.prepare import prepare
from tests.conftest import prose_texts, write_jsonl


def test_mixture_show_plans_tokens_shares_and_epochs(cli, store, tmp_path):
    texts = prose_texts()
    prepare(store, "big", [write_jsonl(tmp_path / "a.jsonl", texts[:40])], "tok", val_fraction=0)
    prepare(store, "small", [write_jsonl(tmp_path / "b.jsonl", texts[40:42])], "tok", val_fraction=0)
    mix = tmp_path / "mix.yaml"
    mix.write_text("phases:\n  - {corpora: {big: 1}, end: switch}\n  - {corpora: {big: 0.5, small: 0.5}}\nreplay: {fraction: 0.2, corpora: {small: 1}}\nmax_epochs: {small: 100}\n")
    code, out, err = cli("mixture", "show", mix, "--samples", "1000", "--seq-len", "64", "--event", "switch=0.7", "--store", store.root)
    assert code == 0, err
    assert "big" in out and "small" in out and "80.0%" in out and "20.0%" in out and "700–1,000" in out
    code, _, err = cli("mixture", "show", mix, "--samples", "1000", "--seq-len", "64", "--store", store.root)
    assert code == 2 and "schedule event 'switch'" in err and "--event switch=" in err and len(err.strip().splitlines()) == 1
    mix.write_text("phases:\n  - {corpora: {big: 1, small: 1}}\nmax_epochs: {small: 1}\n")
    code, _, err = cli("mixture", "show", mix, "--samples", "1000", "--seq-len", "64", "--store", store.root)
    assert code == 2 and "max_epochs 1" in err
    mix.write_text("phases:\n  - {corpora: {big: 1, missing: 1}}\n")
    code, _, err = cli("mixture", "show", mix, "--samples", "10", "--seq-len", "64", "--store", store.root)
    assert code == 2 and "no corpus named 'missing'" in err


def test_mixture_of_corpora_from_different_tokenizers_is_refused(cli, store, tmp_path):
    from renewlm.data.tokenizer import train_tokenizer

    texts = prose_texts()
    train_tokenizer(store, "other", [write_jsonl(tmp_path / "o.jsonl", texts[10:20])], 400)
    prepare(store, "one", [write_jsonl(tmp_path / "a.jsonl", texts[:5])], "tok", val_fraction=0)
    prepare(store, "two", [write_jsonl(tmp_path / "b.jsonl", texts[5:10])], "other", val_fraction=0)
    mix = tmp_path / "mix.yaml"
    mix.write_text("phases:\n  - {corpora: {one: 1, two: 1}}\n")
    code, _, err = cli("mixture", "show", mix, "--samples", "10", "--seq-len", "16", "--store", store.root)
    assert code == 2 and "different tokenizers" in err and "--tokenizer" in err
    mix.write_text("phases:\n  - {corpora: {one: -1}}\n")
    code, _, err = cli("mixture", "show", mix, "--samples", "10", "--seq-len", "16", "--store", store.root)
    assert code == 2 and "phases.0.corpora.one" in err and len(err.strip().splitlines()) == 1
