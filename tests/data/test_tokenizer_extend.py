import json

import pytest

from renewlm.data.tokenizer import EXTENSION, fingerprint, load_tokenizer
from renewlm.data.tokenizer_extend import base_ids, extend_tokenizer, reads
from renewlm.errors import ConfigError, InputError, StoreError
from tests.conftest import new_language_texts, prose_texts, write_jsonl


def _merges(folder) -> list[list[str]]:
    merges = json.loads((folder / "tokenizer.json").read_text())["model"]["merges"]
    return [m.split(" ", 1) if isinstance(m, str) else m for m in merges]


def _bpe(tokens: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply merges to a word's tokens as BPE does: the lowest-ranked adjacent pair first, leftmost first."""
    while True:
        found = [(ranks[p], i) for i, p in enumerate(zip(tokens, tokens[1:])) if p in ranks]
        if not found:
            return tokens
        _, i = min(found)
        tokens = [*tokens[:i], tokens[i] + tokens[i + 1], *tokens[i + 2 :]]


@pytest.fixture
def extended(store, tmp_path):
    """`tok` (byte-level, 1,000 ids, trained on English prose) extended by 200 tokens on the made-up language."""
    done = extend_tokenizer(store, "tok-new", "tok", [write_jsonl(tmp_path / "new.jsonl", new_language_texts())], 200)
    return store, done


def test_old_ids_keep_their_strings_the_old_merges_come_first_and_the_new_language_shortens(extended):
    store, done = extended
    old, new = load_tokenizer(store, "tok"), load_tokenizer(store, "tok-new")
    assert done == {"tokens": 200, "merges": 200, "characters": 0, "vocab_size": 1200, "first_id": 1000,
                    "documents": 300, "words": done["words"]}
    assert len(new) == 1200 and new.eos_token_id == old.eos_token_id
    assert new.convert_ids_to_tokens(list(range(1000))) == old.convert_ids_to_tokens(list(range(1000)))
    old_merges, new_merges = _merges(store.path("tokenizers", "tok")), _merges(store.path("tokenizers", "tok-new"))
    assert new_merges[: len(old_merges)] == old_merges and len(new_merges) == len(old_merges) + 200
    unseen = new_language_texts(100, seed=1)  # other sentences of the same language
    before, after = (sum(len(ids) for ids in t(unseen)["input_ids"]) for t in (old, new))
    assert after <= 0.85 * before, (before, after)
    for text in [*unseen[:20], *prose_texts()[:20], "naïve ✓ 😀 Привет\n\tend"]:
        assert new.decode(new.encode(text)) == text  # lossless


def test_old_text_tokenizes_as_before_but_where_a_new_merge_applies(extended):
    store, _ = extended
    old, new = load_tokenizer(store, "tok"), load_tokenizer(store, "tok-new")
    old_count = len(_merges(store.path("tokenizers", "tok")))
    ranks = {tuple(m): r for r, m in enumerate(_merges(store.path("tokenizers", "tok-new"))[old_count:])}
    pre = old.backend_tokenizer.pre_tokenizer
    for text in [*prose_texts()[:40], *new_language_texts(20, seed=2)]:
        want = [t for word, _ in pre.pre_tokenize_str(text) for t in _bpe([x.value for x in old.backend_tokenizer.model.tokenize(word)], ranks)]
        assert new.convert_ids_to_tokens(new.encode(text)) == want


def test_the_extension_records_its_base_and_a_second_extension_keeps_the_chain(extended, tmp_path):
    store, _ = extended
    old, new = load_tokenizer(store, "tok"), load_tokenizer(store, "tok-new")
    record = json.loads((store.path("tokenizers", "tok-new") / EXTENSION).read_text())
    assert record["base"] == "tok" and record["bases"] == [{"fingerprint": fingerprint(old), "ids": 1000}]
    assert base_ids(new, fingerprint(old)) == 1000 and base_ids(old, fingerprint(new)) is None
    assert reads(new, fingerprint(old)) and reads(new, fingerprint(new)) and not reads(old, fingerprint(new))
    extend_tokenizer(store, "tok-newer", "tok-new", [write_jsonl(tmp_path / "more.jsonl", new_language_texts(100, seed=3))], 20)
    newer = load_tokenizer(store, "tok-newer")
    assert base_ids(newer, fingerprint(new)) == 1200 and base_ids(newer, fingerprint(old)) == 1000 and len(newer) == 1220


def _sentencepiece_style(folder, texts, legacy: bool) -> None:
    """A Llama-2-like tokenizer: Metaspace pre-tokenizer, BPE with byte fallback (<0x00>..<0xFF> in the vocabulary);
    `legacy`: the `▁`s put in by the normalizer and no pre-tokenizer, as older conversions of Llama 2 have it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=700, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens], show_progress=False))
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in ("<unk>", "<s>", "</s>")]  # bytes are plain tokens, as in Llama 2
    if legacy:
        spec["pre_tokenizer"] = None
        spec["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                                  {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token="</s>", bos_token="<s>",
                            unk_token="<unk>").save_pretrained(folder)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_sentencepiece_style_tokenizer_gains_the_characters_it_lacked_then_merges(store, tmp_path, legacy):
    _sentencepiece_style(tmp_path / "sp", [t.replace("\u2581", "_") for t in prose_texts()], legacy)
    old = load_tokenizer(store, str(tmp_path / "sp"))
    assert "<0xD0>" in old.convert_ids_to_tokens(old.encode("б"))  # Cyrillic reads as bytes: the base lacks it
    done = extend_tokenizer(store, "sp-new", str(tmp_path / "sp"), [write_jsonl(tmp_path / "new.jsonl", new_language_texts())], 150)
    new = load_tokenizer(store, "sp-new")
    assert done["characters"] > 0 and done["tokens"] == 150 and len(new) == len(old) + 150
    assert new.convert_ids_to_tokens(list(range(len(old)))) == old.convert_ids_to_tokens(list(range(len(old))))
    unseen = new_language_texts(100, seed=1)
    before, after = (sum(len(ids) for ids in t(unseen, add_special_tokens=False)["input_ids"]) for t in (old, new))
    assert after <= 0.85 * before, (before, after)
    for text in [*unseen[:20], *prose_texts()[:10], "naïve ✓ 😀"]:
        assert new.decode(new.encode(text, add_special_tokens=False)) == text
    assert all(not t.startswith("<0x") for t in new.convert_ids_to_tokens(list(range(len(old), len(new)))))


@pytest.mark.parametrize("model", ["WordPiece", "Unigram", "WordLevel"])
def test_a_tokenizer_that_is_not_bpe_is_refused_naming_its_model(store, tmp_path, model):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = {
        "WordPiece": lambda: models.WordPiece({"[UNK]": 0, "a": 1, "</s>": 2}, unk_token="[UNK]"),
        "Unigram": lambda: models.Unigram([("[UNK]", 0.0), ("a", -1.0), ("</s>", -2.0)], unk_id=0),
        "WordLevel": lambda: models.WordLevel({"[UNK]": 0, "a": 1, "</s>": 2}, unk_token="[UNK]"),
    }[model]()
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(backend), eos_token="</s>").save_pretrained(tmp_path / "tok")
    with pytest.raises(ConfigError, match=f"is a {model} model; `renewlm tokenizer extend` continues BPE training only"):
        extend_tokenizer(store, "x", str(tmp_path / "tok"), [write_jsonl(tmp_path / "a.jsonl", ["a a a"])], 10)
    assert not store.exists("tokenizers", "x")


def test_bad_requests_are_refused_and_leave_nothing(store, tmp_path):
    data = write_jsonl(tmp_path / "new.jsonl", new_language_texts(20))
    with pytest.raises(ConfigError, match="--add 0 must be at least 1"):
        extend_tokenizer(store, "x", "tok", [data], 0)
    with pytest.raises(ConfigError, match=r"over the 4,294,967,296 a corpus can store \(uint32\); add at most 4,294,966,296"):
        extend_tokenizer(store, "x", "tok", [data], 2**32)
    with pytest.raises(InputError, match="no documents with text"):
        extend_tokenizer(store, "x", "tok", [write_jsonl(tmp_path / "blank.jsonl", ["  ", "\n"])], 10)
    with pytest.raises(StoreError, match="tokenizer 'tok' already exists"):
        extend_tokenizer(store, "tok", "tok", [data], 10)
    assert store.names("tokenizers") == ["tok"] and not [p for p in (store.root / "tokenizers").iterdir() if p.name.startswith(".tmp")]


def test_the_command_says_what_it_added_and_refuses_in_one_sentence(store, cli, tmp_path):
    data = write_jsonl(tmp_path / "new.jsonl", new_language_texts(50))
    code, out, err = cli("tokenizer", "extend", "ext", "--from", "tok", "--input", data, "--add", "5000", "--store", store.root)
    assert code == 0, err
    assert "new tokens, ids 1,000–" in out and "note: only" in out and "no other pair occurs at least twice" in out
    code, _, err = cli("tokenizer", "extend", "ext", "--from", "tok", "--input", data, "--add", "10", "--store", store.root)
    assert code == 2 and err.startswith("error: tokenizer 'ext' already exists") and "Traceback" not in err
