"""Fixtures shared by the whole suite: a store with a small tokenizer, corpora from texts, input
writers, the CLI.

    tokenizer_store  session store holding tokenizer `tok` (byte-level BPE, 1,000 ids, EOS <|endoftext|>)
    tokenizer_dir    that tokenizer's Hugging Face folder
    store            a fresh store per test, with `tok` copied in
    make_corpus      make_corpus(name, texts, **prepare_kwargs) -> Corpus in `store`
    cli              cli(*args) -> (exit code, stdout, stderr) of `renewlm ARGS` in this process
    train_store      session store with tokenizer `tok` (512 ids) and corpora `prose` and `code`
    prose_texts(), sentences(), new_language_texts(), write_jsonl(path, texts)   plain helpers
"""

import json
import random
from pathlib import Path

import pydoc_data.topics
import pytest

from renewlm.cli import main
from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.store import Store
from tests.train.conftest import code_texts

EOS = "<|endoftext|>"


def prose_texts() -> list[str]:
    """English prose every Python install ships: the topics of the language reference."""
    return [text for _, text in sorted(pydoc_data.topics.topics.items())]


def sentences(limit: int = 3000) -> list[str]:
    """The prose cut into sentences: documents of about 25 tokens, shorter than the tests' 32-token sequences,
    so nearly every sequence packs several (document masking has boundaries to mask at)."""
    return [s for t in prose_texts() for s in t.split(". ") if 20 < len(s) < 120][:limit]


def new_language_texts(documents: int = 300, seed: int = 0) -> list[str]:
    """Text in a made-up language written in Cyrillic, which no test tokenizer was trained on: sentences
    of words drawn (Zipf-distributed) from one fixed lexicon of syllable words, so two seeds share words."""
    lexicon_rng, rng = random.Random(0), random.Random(seed)
    syllables = [c + v for c in "бвгдзклмнпрстхцчшж" for v in "аеиоуыэюя"]
    lexicon = ["".join(lexicon_rng.choice(syllables) for _ in range(lexicon_rng.randint(1, 4))) for _ in range(2000)]
    weights = [1 / rank for rank in range(1, len(lexicon) + 1)]
    return [
        " ".join(" ".join(rng.choices(lexicon, weights, k=rng.randint(4, 12))).capitalize() + "." for _ in range(rng.randint(3, 8)))
        for _ in range(documents)
    ]


def tiny_model_folder(store: Store, path: Path, architecture: str = "gpt2") -> Path:
    """A tiny Hugging Face model folder saved as a user would (seeded weights, 1,024-token vocabulary,
    128 positions for GPT-2), with the store's tokenizer beside it."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if architecture == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=1024, n_embd=16, n_layer=1, n_head=2, n_positions=128))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2))
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(store.path("tokenizers", "tok")).save_pretrained(path)
    return path


def write_jsonl(path: Path, texts, field: str = "text") -> Path:
    path.write_text("".join(json.dumps({field: t}) + "\n" for t in texts))
    return path


@pytest.fixture(scope="session")
def tokenizer_store(tmp_path_factory) -> Store:
    """A store holding tokenizer `tok` (byte-level BPE, 1,000 ids) trained on prose."""
    tmp = tmp_path_factory.mktemp("tokenizer-store")
    store = Store(tmp / "store")
    train_tokenizer(store, "tok", [write_jsonl(tmp / "prose.jsonl", prose_texts())], 1000)
    return store


@pytest.fixture
def store(tokenizer_store, tmp_path) -> Store:
    """A fresh store per test that shares the session's tokenizer (copied in)."""
    import shutil

    fresh = Store(tmp_path / "store")
    shutil.copytree(tokenizer_store.root / "tokenizers", fresh.root / "tokenizers")
    return fresh


@pytest.fixture(scope="session")
def tokenizer_dir(tokenizer_store) -> Path:
    """The session tokenizer as a Hugging Face folder (`AutoTokenizer.from_pretrained` loads it; EOS
    `<|endoftext|>`). Read it, do not write to it: every test shares it."""
    return tokenizer_store.path("tokenizers", "tok")


@pytest.fixture
def make_corpus(store, tmp_path):
    """`make_corpus(name, texts, **prepare_kwargs) -> Corpus`: the texts as JSON lines, prepared into
    `store` with tokenizer `tok`; by default one worker and nothing held out (`val_fraction=0`)."""
    from renewlm.data import prepare

    folder = tmp_path / "make_corpus"
    folder.mkdir()

    def make(name: str, texts, **kwargs):
        kwargs = {"val_fraction": 0.0, "workers": 1, **kwargs}
        return prepare(store, name, [write_jsonl(folder / f"{name}.jsonl", texts)], "tok", **kwargs)

    return make


@pytest.fixture
def cli(capsys):
    """Run `renewlm ARGS...` in this process; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def train_store(tmp_path_factory) -> Store:
    tmp = tmp_path_factory.mktemp("train-store")
    store = Store(tmp / "store")
    prose = write_jsonl(tmp / "prose.jsonl", [t for _, t in sorted(pydoc_data.topics.topics.items())])
    code = write_jsonl(tmp / "code.jsonl", code_texts())
    train_tokenizer(store, "tok", [prose, code], 512)
    prepare(store, "prose", [prose], "tok", val_fraction=0.1, workers=1)
    prepare(store, "code", [code], "tok", val_fraction=0.2, workers=1)
    return store
