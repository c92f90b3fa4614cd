"""`renewlm demo`: the whole flow on CPU in minutes, from data every Python install ships.

1. Two corpora from the standard library: English prose (module, class and function docstrings and
   `pydoc_data.topics`) and Python source code, and a byte-level BPE tokenizer trained on both.
2. v1: the `tiny` preset pre-trained on prose.
3. Two updates of v1 on code with the same compute: as most people do today (re-warm + re-decay, no
   replay) and the recipe (the same with 25% replay of prose, Ibrahim et al.'s strong-shift setting).
4. A table of held-out loss on prose and code: what each update learned and what it forgot.
"""

from __future__ import annotations

import ast
import json
import re
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pydoc_data.topics

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.store import Store
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.updates.update import update_config
from renewlm.versions import remove_version

_SKIP = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__pycache__"}
NAMES = {"tokenizer": "demo", "prose": "demo-prose", "code": "demo-code"}
VERSIONS = ("demo-v1", "demo-v2-naive", "demo-v2-replay")


@dataclass(frozen=True)
class DemoSize:
    code_bytes: int = 3_000_000
    vocab_size: int = 4096
    seq_len: int = 128
    batch_tokens: int = 4096
    pretrain_steps: int = 240
    update_steps: int = 120
    peak_lr: float = 2e-3


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py") if not _SKIP.intersection(p.relative_to(root).parts))


def prose_documents(files: list[Path]) -> list[str]:
    """Docstrings of 200+ characters, and the topics of the Python reference, one document each."""
    docs = [text for _, text in sorted(pydoc_data.topics.topics.items())]
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200:
                    docs.append(doc)
    return docs


_TOP_LEVEL = re.compile(r"^(?=(?:async def|def|class) )", re.MULTILINE)


def code_documents(files: list[Path], budget_bytes: int) -> list[str]:
    """Source files in path order until the byte budget is spent, one document per top-level
    definition (and one for what precedes the first), so the held-out split has many pieces."""
    docs, used = [], 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if used + len(text) > budget_bytes:
            continue
        docs.extend(piece for piece in _TOP_LEVEL.split(text) if piece.strip())
        used += len(text)
    return docs


def _write_jsonl(path: Path, texts: list[str]) -> Path:
    with path.open("w") as f:
        for text in texts:
            f.write(json.dumps({"text": text}) + "\n")
    return path


def run_demo(store: Store, size: DemoSize = DemoSize(), say=print) -> dict[str, dict[str, float]]:
    """Build the data, pre-train v1, run both updates; return each version's held-out losses."""
    files = stdlib_files()
    for name in VERSIONS:  # the demo starts over its own versions and runs each time
        if store.exists("versions", name):
            remove_version(store, name, force=True)
    with tempfile.TemporaryDirectory() as tmp:
        prose = _write_jsonl(Path(tmp) / "prose.jsonl", prose_documents(files))
        code = _write_jsonl(Path(tmp) / "code.jsonl", code_documents(files, size.code_bytes))
        say(f"data: {prose.stat().st_size / 1e6:.1f} MB of prose, {code.stat().st_size / 1e6:.1f} MB of code from {len(files)} standard-library files")
        train_tokenizer(store, NAMES["tokenizer"], [prose, code], size.vocab_size, overwrite=True)
        for kind, path in (("prose", prose), ("code", code)):
            corpus = prepare(store, NAMES[kind], [path], NAMES["tokenizer"], val_fraction=0.05, overwrite=True)
            say(f"corpus {corpus.name}: {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")

    common = dict(seq_len=size.seq_len, batch_tokens=size.batch_tokens, micro_batch=size.batch_tokens // size.seq_len)
    v1 = validate_run(
        {
            "name": VERSIONS[0], "preset": "tiny", "tokenizer": NAMES["tokenizer"],
            "mixture": {"phases": [{"corpora": {NAMES["prose"]: 1.0}}]},
            "schedule": {"name": "cosine", "peak_lr": size.peak_lr},
            "steps": size.pretrain_steps, "eval_every": size.pretrain_steps // 3, **common,
        },
        "demo v1",
    )
    losses = {VERSIONS[0]: train(v1, store, fresh=True)["losses"]}
    for name, replay in ((VERSIONS[1], 0.0), (VERSIONS[2], 0.25)):
        cfg = update_config(
            store, name, parent=VERSIONS[0], data=[NAMES["code"]], replay=replay, recipe="cosine",
            steps=size.update_steps, eval_every=size.update_steps // 3, **common,
        )
        losses[name] = train(cfg, store, fresh=True)["losses"]
    # v1 never saw code; an update's evaluation at step 0 (v1's weights, before any step) measured it.
    first_eval = next(r for r in read_metrics(store.path("runs", VERSIONS[1]) / "metrics.jsonl") if "eval" in r)
    losses[VERSIONS[0]] = {**first_eval["eval"], **losses[VERSIONS[0]]}
    return losses
