import math

import pytest

import renewlm.eval.bytes as per_byte_module
from renewlm.data.tokenizer import load_tokenizer
from renewlm.eval.bytes import bits_per_byte, heldout_bytes, per_byte
from tests.conftest import new_language_texts, prose_texts


def test_the_windows_bytes_are_those_of_their_predicted_tokens(store, make_corpus):
    corpus = make_corpus("mixed", [*prose_texts()[:30], *new_language_texts(30)])
    tok = load_tokenizer(store, "tok")
    split = corpus.train
    tokens, n_bytes = heldout_bytes(split, tok, seq_len=64, max_tokens=4096)
    assert tokens == 64 * 64
    # Byte-level BPE: each character of a token's string stands for one byte; EOS for none.
    predicted = split.read(1, tokens)
    want = sum(0 if t == tok.eos_token_id else len(tok.convert_ids_to_tokens(int(t))) for t in predicted)
    assert n_bytes == want
    assert bits_per_byte(2.0, tokens, n_bytes) == pytest.approx(2.0 * tokens / (n_bytes * math.log(2)))
    numbers = per_byte(2.0, split, tok, seq_len=64, max_tokens=4096)
    assert numbers["bytes_per_token"] == pytest.approx(n_bytes / tokens)
    assert numbers["bits_per_byte"] == pytest.approx(2.0 / numbers["bytes_per_token"] / math.log(2))


def test_a_corpus_is_decoded_once_per_tokenizer_and_windows(store, make_corpus, monkeypatch):
    corpus = make_corpus("once", prose_texts()[:20])
    tok = load_tokenizer(store, "tok")
    first = heldout_bytes(corpus.train, tok, seq_len=32, max_tokens=2048)
    monkeypatch.setattr(per_byte_module.np, "split", lambda *a, **k: pytest.fail("decoded again"))
    assert heldout_bytes(corpus.train, tok, seq_len=32, max_tokens=2048) == first
    monkeypatch.undo()
    assert heldout_bytes(corpus.train, tok, seq_len=32, max_tokens=1024)[0] == 1024  # other windows: counted anew


def test_a_split_without_a_window_has_no_bits_per_byte(store, make_corpus):
    corpus = make_corpus("short", ["a few words"])
    tok = load_tokenizer(store, "tok")
    assert heldout_bytes(corpus.train, tok, seq_len=512, max_tokens=4096) == (0, 0)
    assert per_byte(1.0, corpus.train, tok, seq_len=512, max_tokens=4096) == {"bits_per_byte": None, "bytes_per_token": None}
