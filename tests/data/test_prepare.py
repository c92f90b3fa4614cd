"""`prepare`: round trips, every input format, determinism, shards."""

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import zstandard
from transformers import AutoTokenizer

from renewlm.data.corpus import Corpus
from renewlm.data.prepare import is_heldout, prepare
from renewlm.errors import ConfigError
from tests.conftest import EOS, prose_texts, write_jsonl

TEXTS = prose_texts()[:40] + ["naïve café — ünïcödé ✓ 日本語", "x"]


def decode(store, tokens) -> str:
    tok = AutoTokenizer.from_pretrained(store.path("tokenizers", "tok"))
    return tok.decode(tokens.tolist(), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def all_tokens(corpus) -> np.ndarray:
    return np.asarray(corpus.train.read(0, corpus.train.num_tokens))


def test_round_trip_decodes_to_the_source_with_eos_between_documents(store, tmp_path):
    corpus = prepare(store, "c", [write_jsonl(tmp_path / "a.jsonl", TEXTS)], "tok", val_fraction=0, workers=2)
    assert decode(store, all_tokens(corpus)) == "".join(t + EOS for t in TEXTS)
    assert corpus.train.num_documents == len(TEXTS) and corpus.val.num_tokens == 0
    assert decode(store, corpus.train.document(3)) == TEXTS[3] + EOS
    assert corpus.dtype == np.uint16
    m = corpus.manifest
    assert m["train"]["documents"] == len(TEXTS) and m["tokenizer"]["eos_id"] == corpus.eos_id
    assert m["sources"][0]["bytes"] == (tmp_path / "a.jsonl").stat().st_size and len(m["sources"][0]["sha256"]) == 64


def test_heldout_split_by_content_is_stable_and_about_the_asked_fraction(store, tmp_path):
    texts = [f"document number {i} " * (1 + i % 7) for i in range(3000)]
    path = write_jsonl(tmp_path / "many.jsonl", texts)
    one = prepare(store, "one", [path], "tok", val_fraction=0.1, workers=1)
    two = prepare(store, "two", [path], "tok", val_fraction=0.1, workers=2)
    # Same documents, any worker count: the same shards, byte for byte.
    for split in ("train", "val"):
        assert [s["file_sha256"] for s in one.manifest[split]["shards"]] == [s["file_sha256"] for s in two.manifest[split]["shards"]]
    assert 240 < one.val.num_documents < 360
    # The split follows the text: reordering the input does not move a document between splits.
    shuffled = write_jsonl(tmp_path / "shuffled.jsonl", texts[::-1])
    three = prepare(store, "three", [shuffled], "tok", val_fraction=0.1, workers=2)
    assert three.val.num_documents == one.val.num_documents
    heldout = {t for t in texts if is_heldout(t, 0.1)}
    assert decode(store, three.val.read(0, three.val.num_tokens)) == "".join(t + EOS for t in texts[::-1] if t in heldout)


def test_every_input_format_gives_the_same_tokens(store, tmp_path):
    expected = all_tokens(prepare(store, "ref", [write_jsonl(tmp_path / "ref.jsonl", TEXTS)], "tok", val_fraction=0))
    lines = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(TEXTS)).encode()
    (tmp_path / "gz.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "zst.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines))
    (tmp_path / "lines.json").write_bytes(lines)
    (tmp_path / "array.json").write_text(json.dumps([{"text": t} for t in TEXTS]))
    table = pa.table({"id": list(range(len(TEXTS))), "text": TEXTS})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=7)
    pcsv.write_csv(table, tmp_path / "t.csv")
    folder = tmp_path / "txt"
    folder.mkdir()
    for i, t in enumerate(TEXTS):
        (folder / f"{i:03d}.txt").write_text(t)
    import datasets

    datasets.Dataset.from_dict({"text": TEXTS}).save_to_disk(str(tmp_path / "saved"))
    for i, source in enumerate(["gz.jsonl.gz", "zst.jsonl.zst", "lines.json", "array.json", "t.parquet", "t.csv", "txt", "saved"]):
        corpus = prepare(store, f"f{i}", [tmp_path / source], "tok", val_fraction=0, workers=2)
        assert np.array_equal(all_tokens(corpus), expected), source


def test_blank_line_paragraphs_of_a_text_file_are_documents(store, tmp_path):
    paragraphs = ["First paragraph,\nover two lines.", "Second.", "Third one."]
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(paragraphs) + "\n\n\n")
    corpus = prepare(store, "book", [path], "tok", val_fraction=0, split_blank_lines=True)
    assert corpus.train.num_documents == 3
    assert decode(store, all_tokens(corpus)) == "".join(p + EOS for p in paragraphs)


def test_invalid_utf8_is_replaced_counted_and_reported(store, tmp_path, cli):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "good line"}\n{"text": "bad \xff\xfe bytes"}\n' + '{"text": "caf\u00e9"}\n'.encode())
    code, out, err = cli("prepare", "bad", "--input", path, "--tokenizer", "tok", "--val-fraction", "0", "--store", store.root)
    assert code == 0, err
    assert "2 invalid UTF-8 sequence(s) replaced" in out
    corpus = Corpus.open(store, "bad")
    assert corpus.manifest["replaced_characters"] == 2
    assert decode(store, all_tokens(corpus)) == f"good line{EOS}bad \ufffd\ufffd bytes{EOS}café{EOS}"


def test_large_vocabularies_use_uint32(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from renewlm.store import Store

    vocab = {f"w{i}": i for i in range(70000)}
    vocab["<|endoftext|>"] = 70000
    vocab["[UNK]"] = 70001
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "big-tok"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", unk_token="[UNK]").save_pretrained(folder)
    store = Store(tmp_path / "store")
    corpus = prepare(store, "big", [write_jsonl(tmp_path / "w.jsonl", ["w1 w69999 w5"])], str(folder), val_fraction=0)
    assert corpus.dtype == np.uint32
    assert all_tokens(corpus).tolist() == [1, 69999, 5, 70000]


def test_lone_surrogates_from_json_escapes_are_replaced_and_counted(store, tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "lone \\ud800 half"}\n{"text": "pair \\ud83d\\ude00 ok"}\n')
    corpus = prepare(store, "s", [path], "tok", val_fraction=0, workers=2)
    assert corpus.manifest["replaced_characters"] == 1
    assert decode(store, all_tokens(corpus)) == f"lone \ufffd half{EOS}pair \U0001f600 ok{EOS}"


def test_several_inputs_in_order_with_progress_and_sources(store, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", TEXTS[:10])
    b = tmp_path / "b.txt"
    b.write_text(TEXTS[10])
    seen = []
    corpus = prepare(store, "ab", [a, b], "tok", val_fraction=0, workers=2, progress=seen.append)
    assert decode(store, all_tokens(corpus)) == "".join(t + EOS for t in TEXTS[:11])
    assert [s["path"] for s in corpus.manifest["sources"]] == [str(a), str(b)]
    assert seen and seen[-1]["documents"] == 11 and sum(p["tokens"] for p in seen) == corpus.train.num_tokens


def test_bad_settings_are_refused_before_any_work(store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", ["text"])
    with pytest.raises(ConfigError, match="--workers 0"):
        prepare(store, "c", [path], "tok", workers=0)
    with pytest.raises(ConfigError, match="--val-fraction 1"):
        prepare(store, "c", [path], "tok", val_fraction=1)
    assert not (store.root / "corpora").exists()


def test_long_texts_tokenized_in_pieces_equal_the_whole_text(tokenizer_dir):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    from renewlm.data.prepare import encode_long, seam_mode

    text = "\n\n".join(prose_texts()[:60]) + " tail: naïve  café\n"
    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    assert seam_mode(tok) == "keep"  # byte-level BPE: cut before a space between two words
    whole = tok.encode(text, add_special_tokens=False).ids
    for piece_chars in (50, 1000, 7777):
        assert encode_long(tok, text, "keep", np.dtype(np.uint16), piece_chars).tolist() == whole
    # A SentencePiece-style tokenizer prepends "▁" to every input: its pieces start after the space.
    sp = Tokenizer(models.BPE(unk_token="<unk>"))
    sp.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    sp.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    sp.train_from_iterator(prose_texts()[:60], trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>"], show_progress=False))
    assert seam_mode(sp) == "drop"
    whole = sp.encode(text, add_special_tokens=False).ids
    assert encode_long(sp, text, "drop", np.dtype(np.uint16), 1000).tolist() == whole
    # A BPE with no pre-tokenizer merges across spaces ("▁a▁b" is one token): no seam is safe, and
    # its long texts are encoded whole.
    glued = Tokenizer(models.BPE(unk_token="<unk>"))
    glued.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    glued.train_from_iterator(["▁a▁b " * 50, "x y z"], trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False))
    mode = seam_mode(glued)
    assert mode is None
    assert encode_long(glued, text, mode, np.dtype(np.uint16), 1000).tolist() == glued.encode(text).ids


def test_prepare_of_a_long_document_matches_whole_text_tokenization(store, tmp_path, monkeypatch):
    import importlib

    prepare_module = importlib.import_module("renewlm.data.prepare")  # the module: renewlm.data.prepare is the function

    long_text = " ".join(prose_texts()[:80])
    path = write_jsonl(tmp_path / "long.jsonl", [long_text, "short one"])
    whole = all_tokens(prepare(store, "whole", [path], "tok", val_fraction=0, workers=1))
    monkeypatch.setattr(prepare_module, "PIECE_CHARS", 4096)  # workers=1: this process tokenizes
    pieces = prepare(store, "pieces", [path], "tok", val_fraction=0, workers=1)
    assert len(long_text) > 20 * 4096 and np.array_equal(all_tokens(pieces), whole)


def test_min_heldout_tokens_moves_documents_by_hash_whatever_the_order_or_workers(store, tmp_path):
    from renewlm.data.heldout import heldout_warning

    texts = prose_texts()
    big = ["\n\n".join(texts[i::4]) for i in range(4)]  # four long documents
    plain = prepare(store, "plain", [write_jsonl(tmp_path / "a.jsonl", big)], "tok", workers=1, val_fraction=0)
    total = plain.train.num_tokens
    want = total // 3
    one = prepare(store, "one", [write_jsonl(tmp_path / "a.jsonl", big)], "tok", workers=1, min_heldout_tokens=want)
    two = prepare(store, "two", [write_jsonl(tmp_path / "b.jsonl", big[::-1])], "tok", workers=2, min_heldout_tokens=want)
    assert one.val.num_tokens == want == two.val.num_tokens
    assert one.train.num_tokens + one.val.num_tokens == total + (1 if one.manifest["heldout_added"]["chunk_tokens"] else 0)
    assert np.array_equal(one.val.read(0, want), two.val.read(0, want))
    train_docs = sorted(bytes(one.train.document(i)) for i in range(one.train.num_documents))
    assert train_docs == sorted(bytes(two.train.document(i)) for i in range(two.train.num_documents))
    assert all(d[-2:] == np.array([one.eos_id], np.uint16).tobytes() for d in train_docs)  # a cut document ends with EOS too
    added = one.manifest["heldout_added"]
    assert one.manifest["min_heldout_tokens"] == want and added["tokens"] == want
    assert added["whole_documents"] + one.train.num_documents == 4 and not any(is_heldout(t, 0.005) for t in big)
    assert heldout_warning(one.manifest) is None
    Corpus.open(store, "one")  # the rewritten shards match their manifest
    # The held-out text is the documents' own text: a document moved whole decodes to itself.
    held = decode(store, one.val.read(0, one.val.num_tokens))
    assert held.endswith(EOS) and all(len(part) > 0 for part in held.split(EOS)[:-1])


def test_with_the_defaults_a_corpus_of_two_or_more_documents_always_holds_some_out(store, tmp_path):
    from renewlm.data.heldout import heldout_warning
    from renewlm.data.prepare import _hash

    texts = prose_texts()[:40]
    assert not any(is_heldout(t, 0.005) for t in texts)  # the hash alone holds out none of them
    first = min(texts, key=lambda t: _hash(t.encode()))
    one = prepare(store, "one", [write_jsonl(tmp_path / "a.jsonl", texts)], "tok", workers=1)
    two = prepare(store, "two", [write_jsonl(tmp_path / "b.jsonl", texts[::-1])], "tok", workers=2)
    for c in (one, two):  # the document of smallest hash, whole, whatever the order or workers
        assert c.val.num_documents == 1 and decode(store, c.val.document(0)) == first + EOS
        assert c.train.num_documents == 39 and c.manifest["heldout_added"]["whole_documents"] == 1
    Corpus.open(store, "two")  # the rewritten shards match their manifest
    # Four books: the tail of one (10,000 tokens, the share it would otherwise lose is a quarter).
    books = ["\n\n".join(prose_texts()[i::4]) for i in range(4)]
    four = prepare(store, "four", [write_jsonl(tmp_path / "books.jsonl", books)], "tok", workers=1)
    assert four.val.num_tokens == 10_000 and four.train.num_documents == 4 and heldout_warning(four.manifest) is None
    assert four.manifest["heldout_added"] == {"whole_documents": 0, "chunk_tokens": 10_000, "tokens": 10_000}
    # Asked for no held-out split, or one document only: nothing is moved.
    assert prepare(store, "none", [tmp_path / "a.jsonl"], "tok", val_fraction=0).val.num_tokens == 0
    single = prepare(store, "single", [write_jsonl(tmp_path / "s.jsonl", books[:1])], "tok")
    assert single.val.num_tokens == 0 and single.manifest["heldout_added"] is None
    assert heldout_warning(single.manifest).endswith("prepare again with --overwrite --min-heldout-tokens 10000")


def test_the_small_heldout_warning_suggests_a_count_the_flag_takes():
    from renewlm.data.heldout import heldout_warning

    def suggested(train_tokens):
        m = {"train": {"tokens": train_tokens}, "val": {"tokens": 0, "documents": 0}, "val_fraction": 0.005,
             "min_heldout_tokens": 0}
        return heldout_warning(m).rsplit(" ", 1)[1]

    assert suggested(777_780) == "38889"  # 5%, digits only
    assert suggested(12_000) == "6000"  # never over the half of the corpus that the flag refuses
    assert suggested(10**9) == "100000"


def test_files_without_an_extension_as_text_with_format(store, tmp_path):
    (tmp_path / "NOTES").write_text(TEXTS[0])
    corpus = prepare(store, "notes", [tmp_path / "NOTES"], "tok", val_fraction=0, input_format="txt")
    assert decode(store, all_tokens(corpus)) == TEXTS[0] + EOS
    assert corpus.manifest["input_format"] == "txt"
    # A forced format applies to every file, whatever its name: a .jsonl read as text is one document.
    lines = write_jsonl(tmp_path / "as_text.jsonl", TEXTS[:2])
    corpus = prepare(store, "raw", [lines], "tok", val_fraction=0, input_format="txt")
    assert decode(store, all_tokens(corpus)) == lines.read_text() + EOS
