"""A store with a tokenizer and two small corpora (prose, code), built once for the training tests."""

import json
import sysconfig
from pathlib import Path

import pydoc_data.topics
import pytest

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.store import Store


def _jsonl(path: Path, texts) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def code_texts(limit_bytes: int = 1_000_000) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out, used = [], 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if used + len(text) > limit_bytes:
            break
        out.append(text)
        used += len(text)
    return out


@pytest.fixture(scope="session")
def train_store(tmp_path_factory) -> Store:
    tmp = tmp_path_factory.mktemp("train-store")
    store = Store(tmp / "store")
    prose = _jsonl(tmp / "prose.jsonl", [t for _, t in sorted(pydoc_data.topics.topics.items())])
    code = _jsonl(tmp / "code.jsonl", code_texts())
    train_tokenizer(store, "tok", [prose, code], 512)
    prepare(store, "prose", [prose], "tok", val_fraction=0.1, workers=1)
    prepare(store, "code", [code], "tok", val_fraction=0.2, workers=1)
    return store


def run_dict(name: str, **overrides) -> dict:
    """A small, fast run of the tiny preset on prose."""
    run = {
        "name": name,
        "preset": "tiny",
        "tokenizer": "tok",
        "mixture": {"phases": [{"corpora": {"prose": 1.0}}]},
        "schedule": {"name": "cosine", "peak_lr": 3e-3},
        "seq_len": 32,
        "batch_tokens": 32 * 8,
        "micro_batch": 2,
        "steps": 8,
        "eval_tokens": 1024,
        "seed": 1,
    }
    run.update(overrides)
    return run
