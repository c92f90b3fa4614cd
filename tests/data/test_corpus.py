"""Corpus: reading splits across shards, the manifest, verification of shards when opened."""

import numpy as np
import pytest

from renewlm.data import Corpus, Split, list_corpora, prepare
from renewlm.data.corpus import ShardWriter
from renewlm.data.prepare import prepare as prepare_itself
from renewlm.data.tokenizer import fingerprint, load_tokenizer
from renewlm.errors import CorruptError, StoreError
from tests.conftest import prose_texts


def test_reads_cross_shard_boundaries(tmp_path):
    writer = ShardWriter(tmp_path / "train", np.dtype(np.uint16), shard_tokens=10)
    docs = [np.arange(k * 100, k * 100 + n, dtype=np.uint16) for k, n in enumerate([4, 4, 4, 12, 3])]
    writer.add(np.concatenate(docs[:2]), np.array([4, 4]))  # documents arrive in several pieces
    writer.add(np.concatenate(docs[2:]), np.array([4, 12, 3]))
    info = writer.close()
    assert [s["tokens"] for s in info["shards"]] == [8, 4, 12, 3]  # documents never straddle shards
    split = Split(tmp_path / "train", info, np.dtype(np.uint16))
    whole = np.concatenate(docs)
    assert split.num_tokens == len(whole) and split.num_documents == len(docs)
    for start in range(len(whole) + 1):
        for length in (0, 1, 5, len(whole) - start):
            if start + length <= len(whole):
                assert np.array_equal(split.read(start, length), whole[start : start + length])
    for i, d in enumerate(docs):
        assert np.array_equal(split.document(i), d)
    for start, length in ((len(whole) - 1, 2), (-1, 1), (0, -1)):
        with pytest.raises(IndexError):
            split.read(start, length)
    with pytest.raises(IndexError):
        split.document(len(docs))


def test_the_corpus_interface(store, make_corpus):
    texts = prose_texts()[:30]
    corpus = make_corpus("prose", texts, val_fraction=0.2)
    assert prepare is prepare_itself  # `from renewlm.data import prepare` is the one prepare
    opened = Corpus.open(store, "prose")
    assert opened.name == "prose" and opened.path == store.path("corpora", "prose")
    assert opened.dtype == np.uint16 and opened.eos_id == load_tokenizer(store, "tok").eos_token_id
    assert opened.tokenizer_fingerprint == fingerprint(load_tokenizer(store, "tok"))
    assert opened.manifest == corpus.manifest
    assert opened.train.num_documents + opened.val.num_documents == len(texts)
    assert 0 < opened.val.num_documents < len(texts)
    for split in (opened.train, opened.val):
        ends = np.cumsum([len(split.document(i)) for i in range(split.num_documents)])
        assert ends[-1] == split.num_tokens
        tokens = split.read(0, split.num_tokens)
        assert (tokens[ends - 1] == opened.eos_id).all() and (tokens == opened.eos_id).sum() == split.num_documents
        # A window is a view of the cached memory map, not a copy.
        assert np.shares_memory(split.read(3, 10), split.read(0, split.num_tokens))
    m = opened.manifest
    for key in ("name", "renewlm_version", "created", "tokenizer", "dtype", "text_field", "val_fraction", "sources",
                "replaced_characters", "empty_documents", "train", "val"):
        assert key in m, key
    assert m["train"]["tokens"] == opened.train.num_tokens and m["val"]["documents"] == opened.val.num_documents


def test_list_corpora_gives_the_manifests_and_skips_temporary_entries(store, make_corpus):
    assert list_corpora(store) == []
    make_corpus("b", ["second"])
    make_corpus("a", ["first"])
    (store.root / "corpora" / ".tmp-c-1-abcdef01").mkdir()
    assert [m["name"] for m in list_corpora(store)] == ["a", "b"]


def test_opening_a_missing_corpus_lists_what_exists(store, make_corpus):
    make_corpus("there", ["text"])
    with pytest.raises(StoreError, match="no corpus named 'nope'.*there"):
        Corpus.open(store, "nope")


@pytest.mark.parametrize("file", ["train/00000.bin", "train/00000.idx", "val/00000.bin"])
def test_an_altered_truncated_or_missing_shard_file_is_found(store, make_corpus, file):
    make_corpus("c", prose_texts()[:30], val_fraction=0.3)
    path = store.path("corpora", "c") / file
    original = path.read_bytes()
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 1
    path.write_bytes(bytes(altered))
    Corpus.open(store, "c", verify=False)  # only verification notices
    with pytest.raises(CorruptError, match=f"{file}.*altered.*--overwrite"):
        Corpus.open(store, "c")
    path.write_bytes(original[:-8])
    with pytest.raises(CorruptError, match="truncated.*--overwrite"):
        Corpus.open(store, "c")
    path.unlink()
    with pytest.raises(CorruptError, match="missing"):
        Corpus.open(store, "c")
    path.write_bytes(original)
    assert Corpus.open(store, "c").train.num_tokens > 0
