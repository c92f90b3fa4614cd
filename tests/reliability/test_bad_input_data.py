"""Bad input to `prepare` and `mixture show` from the reliability audit: one sentence on stderr,
exit 2, no corpus (nor a temporary one) left in the store."""

import gzip
import json

import pytest
import zstandard

from tests.conftest import prose_texts, write_jsonl

LINES = "".join(json.dumps({"text": t}) + "\n" for t in prose_texts()[:30]).encode()


def refused(cli, store, args, *phrases):
    code, out, err = cli(*args, "--store", store.root)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    assert "Traceback" not in err and all(p in lines[0] for p in phrases), lines[0]
    corpora = store.root / "corpora"
    assert not store.exists("corpora", "c")
    assert not corpora.exists() or not [p for p in corpora.iterdir() if p.name.startswith(".tmp-")]
    return lines[0]


def prepare(path, *extra):
    return ["prepare", "c", "--input", path, "--tokenizer", "tok", "--workers", "2", *extra]


def test_truncated_gzip(cli, store, tmp_path):
    data = gzip.compress(LINES)
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    refused(cli, store, prepare(tmp_path / "cut.jsonl.gz"), "cut.jsonl.gz is truncated")


def test_gzip_with_a_bad_crc(cli, store, tmp_path):
    data = bytearray(gzip.compress(LINES))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    (tmp_path / "crc.jsonl.gz").write_bytes(bytes(data))
    refused(cli, store, prepare(tmp_path / "crc.jsonl.gz"), "crc.jsonl.gz is a damaged gz file", "CRC")


def test_truncated_zstd_and_a_truncated_gzip_text_file(cli, store, tmp_path):
    data = zstandard.ZstdCompressor().compress(LINES)
    (tmp_path / "cut.jsonl.zst").write_bytes(data[: len(data) // 2])
    refused(cli, store, prepare(tmp_path / "cut.jsonl.zst"), "cut.jsonl.zst is truncated")
    data = gzip.compress(b"plain text " * 10_000)
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    refused(cli, store, prepare(tmp_path / "cut.txt.gz"), "cut.txt.gz is truncated")


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json"])
def test_json_nested_100000_deep(cli, store, tmp_path, name):
    deep = "[" * 100_000 + "]" * 100_000
    record = '{"text": "fine"}\n' + '{"text": "x", "meta": ' + deep + "}\n"
    (tmp_path / name).write_text(record if name.endswith("l") else f"[{deep}]")
    refused(cli, store, prepare(tmp_path / name), name, "nests JSON deeper than can be parsed")


def test_unknown_format_name_and_a_file_without_extension(cli, store, tmp_path):
    (tmp_path / "README").write_text("a plain text file")
    refused(cli, store, prepare(tmp_path / "README"), "unknown format", "--format txt")
    refused(cli, store, prepare(tmp_path / "README", "--format", "docx"), "--format 'docx'", "txt")


def test_min_heldout_tokens_over_half_the_corpus(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "small.jsonl", prose_texts()[:3])
    refused(cli, store, prepare(path, "--min-heldout-tokens", "1000000000"), "--min-heldout-tokens", "more than half")
    refused(cli, store, prepare(path, "--min-heldout-tokens", "-1"), "negative")
    refused(cli, store, prepare(path, "--min-heldout-tokens", "ten"), "--min-heldout-tokens 'ten' is not a token count")


@pytest.fixture
def corpus_store(store, tmp_path):
    from renewlm.data.prepare import prepare as prepare_corpus

    prepare_corpus(store, "a", [write_jsonl(tmp_path / "a.jsonl", prose_texts()[:20])], "tok", val_fraction=0, workers=1)
    return store


def show(mix, samples="1000", seq_len="64"):
    return ["mixture", "show", mix, "--samples", samples, "--seq-len", seq_len]


@pytest.mark.parametrize("weight", [".inf", ".nan", "-.inf"])
def test_non_finite_mixture_weight(cli, corpus_store, tmp_path, weight):
    mix = tmp_path / "mix.yaml"
    mix.write_text(f"phases:\n  - corpora: {{a: {weight}}}\n")
    refused(cli, corpus_store, show(mix), "phases.0.corpora.a")


def test_non_finite_replay_fraction(cli, corpus_store, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text("phases:\n  - corpora: {a: 1}\nreplay: {fraction: .nan, corpora: {a: 1}}\n")
    refused(cli, corpus_store, show(mix), "replay.fraction")


def test_absurd_sample_counts_are_refused_and_huge_ones_planned(cli, corpus_store, tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text("phases:\n  - corpora: {a: 1}\n")
    # 3.1e16 samples of 2,048 tokens (the audit's 27.8 PiB plan): beyond 64-bit counters.
    refused(cli, corpus_store, show(mix, "31000000000000000", "2048"), "beyond what 64-bit counters hold")
    # 1e11 samples (the audit's 93 GiB plan) take no memory any more: planned at once.
    code, out, err = cli(*show(mix, "100000000000", "16"), "--store", corpus_store.root)
    assert code == 0 and "100,000,000,000" in out, err
