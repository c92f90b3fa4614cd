import pytest
from transformers import AutoTokenizer

from renewlm.data.tokenizer import fingerprint, load_tokenizer, train_tokenizer
from renewlm.errors import ConfigError, StoreError
from tests.conftest import write_jsonl


def test_trained_tokenizer_is_a_hugging_face_folder_with_eos(tokenizer_store):
    tok = AutoTokenizer.from_pretrained(tokenizer_store.path("tokenizers", "tok"))
    assert tok.is_fast and tok.eos_token == "<|endoftext|>" and len(tok) == 1000
    text = "def f(x):\n    return x  # naïve ✓"
    assert tok.decode(tok.encode(text), clean_up_tokenization_spaces=False) == text  # byte-level: lossless


def test_load_by_name_version_or_folder_and_the_fingerprint_follows_the_ids(tokenizer_store, tmp_path):
    by_name = load_tokenizer(tokenizer_store, "tok")
    copy = tmp_path / "copy"
    by_name.save_pretrained(copy)
    by_folder = load_tokenizer(tokenizer_store, str(copy))
    assert fingerprint(by_name) == fingerprint(by_folder)
    store2 = tokenizer_store.__class__(tmp_path / "other-store")
    train_tokenizer(store2, "small", [write_jsonl(tmp_path / "a.jsonl", ["some other text " * 50])], 300)
    assert fingerprint(load_tokenizer(store2, "small")) != fingerprint(by_name)


def test_load_errors(tokenizer_store, tmp_path):
    with pytest.raises(StoreError, match="tokenizer 'nope'"):
        load_tokenizer(tokenizer_store, "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no loadable tokenizer"):
        load_tokenizer(tokenizer_store, str(tmp_path / "empty"))
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    no_eos = tmp_path / "no-eos"
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))).save_pretrained(no_eos)
    with pytest.raises(ConfigError, match="no EOS token"):
        load_tokenizer(tokenizer_store, str(no_eos))


def test_tokenizer_train_reads_files_without_an_extension_with_format(store, cli, tmp_path):
    plain = tmp_path / "README"  # no extension: refused unless the format is given
    plain.write_text("\n".join(f"line {i} of plain text about tokenizers" for i in range(300)))
    code, _, err = cli("tokenizer", "train", "plain", "--input", plain, "--vocab-size", "300", "--store", store.root)
    assert code == 2 and "--format" in err
    code, _, err = cli("tokenizer", "train", "plain", "--input", plain, "--vocab-size", "300", "--format", "txt",
                       "--store", store.root)
    assert code == 0, err
    assert store.exists("tokenizers", "plain")
