"""Tokenizers: byte-level BPE trained for from-scratch models, or the tokenizer of any local
Hugging Face folder. A corpus records its tokenizer's fingerprint, so a mixture or a run can check
that every corpus speaks the same ids."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from renewlm.data.sources import expand, one_line, unit_texts, units
from renewlm.errors import ConfigError, InputError, StoreError
from renewlm.store import Store

EOS = "<|endoftext|>"
# Every file a Hugging Face tokenizer may be saved as; a folder holds some of them.
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model", "chat_template.jinja", "chat_template.json",
)
# Beside an extended tokenizer's files (data/tokenizer_extend.py): which tokenizer it extends, and its ids then.
EXTENSION = "renewlm_extension.json"


def train_tokenizer(
    store: Store,
    name: str,
    inputs: list[str | Path],
    vocab_size: int,
    *,
    text_field: str = "text",
    split_blank_lines: bool = False,
    input_format: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Train a byte-level BPE on the inputs (streamed) and save it as `tokenizers/NAME`.

    `input_format` reads every input file in that format whatever its name (as `prepare --format`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 257:
        raise ConfigError(f"--vocab-size {vocab_size} is too small: a byte-level BPE needs at least 257 (256 bytes + EOS)")
    paths, _, _ = expand(inputs, input_format)
    if store.exists("tokenizers", name) and not overwrite:
        raise StoreError(f"tokenizer {name!r} already exists in {store.root}; pass --overwrite to replace it")
    count = [0]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(documents(paths, text_field, split_blank_lines, input_format, count), trainer)
    if count[0] == 0:
        raise InputError(f"no documents with text in {', '.join(map(str, inputs))}; give files that contain text")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS, clean_up_tokenization_spaces=False
    )
    with store.staging("tokenizers", name, overwrite=overwrite) as tmp:
        fast.save_pretrained(tmp)
    return store.path("tokenizers", name)


def documents(paths: list[Path], text_field: str, split_blank_lines: bool, input_format: str | None, count: list[int]):
    """The texts of input files (as `expand` lists them), streamed, that hold more than white space;
    `count[0]` counts them."""
    replaced = [0]
    for path in paths:
        for unit in units(path, text_field, split_blank_lines, input_format):
            for text in unit_texts(unit, text_field, replaced):
                if text.strip():
                    count[0] += 1
                    yield text


def load_tokenizer(store: Store, ref: str | Path):
    """A fast tokenizer from a folder path, a store tokenizer name or a store version name."""
    from transformers import AutoTokenizer

    path = Path(ref).expanduser()
    name = str(ref)
    if path.is_dir() and ("/" in name or not _store_has(store, name)):
        folder = path
    elif _store_has(store, name) and store.exists("tokenizers", name):
        folder = store.path("tokenizers", name)
    elif _store_has(store, name):
        folder = store.path("versions", name)
        _verify_version_tokenizer(folder, name)
    else:
        have = ", ".join(store.names("tokenizers")) or "none"
        raise StoreError(
            f"tokenizer {name!r} is not a folder, nor a tokenizer or version in {store.root} (tokenizers there: {have}); "
            f"train one with `renewlm tokenizer train` or give a Hugging Face folder"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise InputError(f"{folder} holds no loadable tokenizer ({one_line(e)}); give a Hugging Face model or tokenizer folder") from None
    if not tokenizer.is_fast:
        raise ConfigError(f"the tokenizer in {folder} is not a fast (Rust) tokenizer; renewlm needs a tokenizer.json")
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"the tokenizer in {folder} has no EOS token; set eos_token in its tokenizer_config.json")
    return tokenizer


def _store_has(store: Store, name: str) -> bool:
    if "/" in name or os.sep in name or name.startswith("."):
        return False
    return store.exists("tokenizers", name) or store.exists("versions", name)


def fingerprint(tokenizer) -> str:
    """sha256 of what decides the ids: the backend tokenizer's JSON (without padding/truncation
    settings, which do not change ids) and the EOS id appended to every document."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("padding", None)
    spec.pop("truncation", None)
    payload = json.dumps({"tokenizer": spec, "eos": tokenizer.eos_token_id}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def save_tokenizer(tokenizer, folder: Path) -> None:
    """Write the tokenizer into `folder`: the files it was loaded from (and its record of the tokenizer it
    extends, if any), byte for byte, when they still give the same ids (re-saving rewrites some: transformers rebuilds Qwen2 and GPT-NeoX tokenizers
    with its own normalizer and pre-tokenizer), else `save_pretrained`."""
    from transformers import AutoTokenizer

    source = Path(tokenizer.name_or_path or "")
    files = [n for n in TOKENIZER_FILES if (source / n).is_file()] if source.is_dir() else []
    if "tokenizer.json" in files:
        try:
            same = fingerprint(AutoTokenizer.from_pretrained(source, local_files_only=True)) == fingerprint(tokenizer)
        except (OSError, ValueError):
            same = False
        if same:
            for n in [*files, *([EXTENSION] if (source / EXTENSION).is_file() else [])]:
                shutil.copyfile(source / n, folder / n)
            return
    tokenizer.save_pretrained(folder)


def _verify_version_tokenizer(folder: Path, name: str) -> None:
    """Check the files a tokenizer load reads (config.json included: it can name the tokenizer's
    class) against the version's manifest, without hashing the weights."""
    from renewlm.model.load import verify_version

    verify_version(folder, name, only=(*TOKENIZER_FILES, EXTENSION, "config.json"))
