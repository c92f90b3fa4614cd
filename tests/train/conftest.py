"""Helpers for training tests: stdlib code texts and `run_dict`, a small fast run. The `train_store`
fixture built from them lives in tests/conftest.py, so every test folder can use it."""

import sysconfig
from pathlib import Path


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
