"""Extending a trained tokenizer to new text by continued BPE: old ids keep their strings.

The new texts are read with the old tokenizer's own normalizer, pre-tokenizer and merges; the adjacent
token pairs of the pre-tokenized words are counted (weighted by word frequency) and the most frequent
become new merges, one at a time, as in BPE training, starting from the old vocabulary and merges
(data/bpe.py). New merges come after the old ones and new ids after every old id (the model's
vocabulary and the added tokens), so every old id keeps its string and the old merges stay a prefix.
Purason et al. 2025 (arXiv:2512.03989) find continued BPE better than appending a separately trained
vocabulary: the new tokens are built from the old ones, so a text that uses none of them tokenizes
as before.

Byte-level BPE (GPT-2, Llama 3, Qwen2, `renewlm tokenizer train`) and SentencePiece-style BPE (a `▁`
for each space, byte fallback: Llama 2, Mistral) are supported. In the second, a character the
vocabulary lacks is read as its UTF-8 bytes: those characters that occur at least twice become tokens
first (most frequent first), so merges can build on them. The folder records its relation to the base
in `renewlm_extension.json`, which lets a run grow its parent's embeddings (model/resize.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from renewlm.data.bpe import BLOCKED, continue_merges, pack
from renewlm.data.sources import expand
from renewlm.data.tokenizer import EXTENSION, documents, fingerprint, load_tokenizer
from renewlm.errors import ConfigError, InputError, StoreError
from renewlm.store import Store, write_json

# A corpus stores ids as uint32 at most (data/prepare.py), and `tokenizers` numbers ids with u32.
MAX_IDS = 2**32
MIN_COUNT = 2  # a merge used once saves one token and only fits the sample
_BYTE_TOKEN = re.compile(r"<0x[0-9A-F]{2}>")
_SPACE_WORDS = re.compile("\u2581[^\u2581]*|[^\u2581]+")  # a word starts at each `▁`, as SentencePiece splits


def extend_tokenizer(
    store: Store,
    name: str,
    base: str,
    inputs: list[str | Path],
    add: int,
    *,
    text_field: str = "text",
    split_blank_lines: bool = False,
    input_format: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Learn up to `add` new tokens on the inputs and save `base` extended by them as `tokenizers/NAME`.
    Returns what was added: `tokens`, `merges`, `characters`, `vocab_size`, `first_id`, `documents`, `words`."""
    if add < 1:
        raise ConfigError(f"--add {add} must be at least 1: the number of new tokens to learn")
    paths, _, _ = expand(inputs, input_format)
    store.check_new("tokenizers", name)
    if store.exists("tokenizers", name) and not overwrite:
        raise StoreError(f"tokenizer {name!r} already exists in {store.root}; pass --overwrite to replace it")
    tokenizer = load_tokenizer(store, base)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = bpe_kind(spec, base)
    first_id = 1 + max([*spec["model"]["vocab"].values(), *(t["id"] for t in spec["added_tokens"])])
    if first_id + add > MAX_IDS:
        raise ConfigError(
            f"--add {add:,} would give tokenizer {name!r} {first_id + add:,} ids, over the {MAX_IDS:,} a corpus can store "
            f"(uint32); add at most {MAX_IDS - first_id:,}"
        )
    count = [0]
    words = word_counts(documents(paths, text_field, split_blank_lines, input_format, count), tokenizer.backend_tokenizer, spec, kind)
    if not words:
        raise InputError(f"no documents with text in {', '.join(map(str, inputs))}; give files that contain text")
    vocab = dict(spec["model"]["vocab"])
    strings = {i: s for s, i in vocab.items()}
    symbols, chars = word_symbols(tokenizer.backend_tokenizer, words, spec)
    new_chars = [c for c, n in sorted(chars.items(), key=lambda item: (-item[1], item[0])) if n >= MIN_COUNT][:add]
    for i, c in enumerate(new_chars, start=first_id):
        vocab[c], strings[i] = i, c
    flat, weight = pack([[vocab.get(s, BLOCKED) if isinstance(s, str) else s for s in w] for w in symbols], list(words.values()))
    reserved = frozenset(t["content"] for t in spec["added_tokens"]) - set(vocab)
    learned = continue_merges(flat, weight, vocab, strings, add=add - len(new_chars), first_id=first_id + len(new_chars),
                              reserved=reserved, min_count=MIN_COUNT)
    new_tokens = {**{first_id + i: c for i, c in enumerate(new_chars)}, **learned.tokens}
    _extend_spec(spec, new_tokens, [(strings[a], strings[b]) for a, b in learned.pairs])
    record = {
        "format": 1,
        "base": str(base),
        "bases": [{"fingerprint": fingerprint(tokenizer), "ids": first_id}, *(read_extension(_folder(tokenizer)) or {}).get("bases", [])],
        "vocab_size": first_id + len(new_tokens),
        "added": {"tokens": len(new_tokens), "merges": len(learned.pairs), "characters": len(new_chars)},
        "inputs": [str(Path(p).absolute()) for p in inputs],
        "documents": count[0],
        "words": len(words),
    }
    with store.staging("tokenizers", name, overwrite=overwrite) as tmp:
        _save(tokenizer, spec, tmp)
        write_json(tmp / EXTENSION, record)
    return {**record["added"], "vocab_size": record["vocab_size"], "first_id": first_id, "documents": count[0], "words": len(words)}


def bpe_kind(spec: dict, ref: str) -> str:
    """"byte-level" or "metaspace" (SentencePiece-style), or a ConfigError naming what is not supported."""
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise ConfigError(
            f"tokenizer {ref!r} is a {model.get('type')} model; `renewlm tokenizer extend` continues BPE training only "
            f"(byte-level BPE as in GPT-2, Llama 3 and Qwen2, or SentencePiece-style BPE as in Llama 2 and Mistral)"
        )
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise ConfigError(
            f"tokenizer {ref!r} is a BPE with word-piece markers (continuing_subword_prefix or end_of_word_suffix), "
            f"which `renewlm tokenizer extend` does not continue; extend a byte-level or SentencePiece-style BPE"
        )
    pre = json.dumps(spec.get("pre_tokenizer"), ensure_ascii=False)
    if '"ByteLevel"' in pre:
        return "byte-level"
    if '"Metaspace"' in pre or "\u2581" in json.dumps(spec.get("normalizer"), ensure_ascii=False):
        return "metaspace"
    raise ConfigError(
        f"tokenizer {ref!r} is a BPE whose pre-tokenizer ({(spec.get('pre_tokenizer') or {}).get('type')}) is neither "
        f"ByteLevel nor Metaspace, so its words cannot be read back; extend a byte-level or SentencePiece-style BPE"
    )


def word_counts(texts: Iterable[str], backend, spec: dict, kind: str) -> Counter:
    """How often each pre-tokenized word occurs, as the tokenizer reads text: added tokens split out
    first, then the normalizer, then the pre-tokenizer (and, SentencePiece-style, a word per `▁`)."""
    added = [re.escape(t["content"]) for t in spec["added_tokens"] if t["content"]]
    specials = re.compile("|".join(sorted(added, key=len, reverse=True))) if added else None
    normalizer, pre = backend.normalizer, backend.pre_tokenizer
    counts: Counter = Counter()
    for text in texts:
        for piece in specials.split(text) if specials else (text,):
            if normalizer is not None:
                piece = normalizer.normalize_str(piece)
            words = [w for w, _ in pre.pre_tokenize_str(piece)] if pre is not None else [piece]
            if kind == "metaspace":
                words = [p for w in words for p in _SPACE_WORDS.findall(w)]
            counts.update(w for w in words if w)
    return counts


def word_symbols(backend, words: Counter, spec: dict) -> tuple[list[list[int | str]], Counter]:
    """Each word as the old model tokenizes it: token ids, and in place of a byte-fallback or unknown
    token the characters it stands for; and how often each such character occurs."""
    model, unk = spec["model"], spec["model"].get("unk_token")
    fallback = bool(model.get("byte_fallback"))
    special = {t["id"] for t in spec["added_tokens"] if t.get("special")}
    out, chars = [], Counter()
    for word, freq in words.items():
        raw, symbols, span = word.encode(), [], None
        for token in backend.model.tokenize(word):
            if token.value == unk or (fallback and _BYTE_TOKEN.fullmatch(token.value)):
                span = (span[0] if span else token.offsets[0], token.offsets[1])  # byte offsets in the word
                continue
            if span:
                symbols += _chars(raw, span, chars, freq)
                span = None
            symbols.append(BLOCKED if token.id in special else token.id)
        if span:
            symbols += _chars(raw, span, chars, freq)
        out.append(symbols)
    return out, chars


def _chars(raw: bytes, span: tuple[int, int], chars: Counter, freq: int) -> list[str]:
    text = raw[span[0] : span[1]].decode("utf-8", errors="replace")
    for c in text:
        chars[c] += freq
    return list(text)


def _extend_spec(spec: dict, tokens: dict[int, str], merges: list[tuple[str, str]]) -> None:
    """Append the new tokens and merges to the tokenizer.json model, in the merges' own format (pairs, or
    "a b" strings where no token holds a space)."""
    model = spec["model"]
    model["vocab"].update({s: i for i, s in sorted(tokens.items())})
    old = model["merges"]
    as_text = bool(old) and isinstance(old[0], str) and not any(" " in a or " " in b for a, b in merges)
    if old and isinstance(old[0], str) and not as_text:
        old = [m.split(" ", 1) for m in old]
    model["merges"] = [*old, *(f"{a} {b}" if as_text else [a, b] for a, b in merges)]


def _save(tokenizer, spec: dict, folder: Path) -> None:
    """The base's transformers tokenizer (its class, special tokens, chat template) with the extended
    backend, saved and read back: the folder must load with the ids just learned."""
    import copy

    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    try:
        backend = Tokenizer.from_str(json.dumps(spec))
    except Exception as e:  # tokenizers raises a bare Exception for a merge naming an unknown token
        raise InputError(f"the extended tokenizer does not build ({e}); report this with the base tokenizer") from None
    extended = copy.deepcopy(tokenizer)
    extended._tokenizer = backend
    extended.save_pretrained(folder)  # tokenizer.json, tokenizer_config.json (and a chat template): no stale vocab.json
    back = json.loads(AutoTokenizer.from_pretrained(folder, local_files_only=True).backend_tokenizer.to_str())["model"]
    if back["vocab"] != spec["model"]["vocab"] or _pairs(back["merges"]) != _pairs(spec["model"]["merges"]):
        raise InputError(f"the extended tokenizer saved in {folder} does not load back with its new tokens; report this with the base tokenizer")


def _pairs(merges: list) -> list[list[str]]:
    return [m.split(" ", 1) if isinstance(m, str) else list(m) for m in merges]


def read_extension(folder: str | Path) -> dict | None:
    """The `renewlm_extension.json` of a tokenizer (or version) folder, or None."""
    path = Path(folder) / EXTENSION
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    bases = record.get("bases") if isinstance(record, dict) else None
    if not isinstance(bases, list) or not all(isinstance(b, dict) and isinstance(b.get("ids"), int) for b in bases):
        return None
    return record


def _folder(tokenizer) -> Path:
    return Path(getattr(tokenizer, "name_or_path", "") or "")


def base_ids(tokenizer, base_fingerprint: str) -> int | None:
    """How many ids the base tokenizer with `base_fingerprint` had, if `tokenizer` extends it: ids below
    that keep their strings, ids from there on are new. None if it does not extend it."""
    for base in (read_extension(_folder(tokenizer)) or {}).get("bases", []):
        if base.get("fingerprint") == base_fingerprint:
            return base["ids"]
    return None


def base_fingerprints(folder: str | Path) -> set[str]:
    """The fingerprints of every tokenizer the tokenizer in `folder` extends (none for one that extends nothing)."""
    return {b.get("fingerprint") for b in (read_extension(folder) or {}).get("bases", [])}


def reads(tokenizer, corpus_fingerprint: str) -> bool:
    """Whether ids a corpus holds mean to `tokenizer` what they meant when the corpus was prepared: it is
    the corpus's tokenizer, or an extension of it."""
    return corpus_fingerprint == fingerprint(tokenizer) or base_ids(tokenizer, corpus_fingerprint) is not None
