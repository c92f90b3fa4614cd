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
import os
import re
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pydoc_data.topics
import torch

from renewlm.counts import DEFAULT_EVAL_TOKENS
from renewlm.data.corpus import Corpus
from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.errors import ConfigError
from renewlm.eval.cadence import Every
from renewlm.eval.heldout import heldout_windows
from renewlm.model.presets import preset_config
from renewlm.store import Store
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.updates.request import UpdateRequest
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


def choose_threads(threads: int | None = None) -> tuple[int, str]:
    """CPU threads for the demo and why: `threads` when given, else OMP_NUM_THREADS, else the cores not
    busy now. docs/training.md: with one of two cores taken, two threads train 35% slower than one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads {threads} must be at least 1; e.g. --threads {cores}")
        return threads, f"--threads, {cores} cores"
    given = os.environ.get("OMP_NUM_THREADS", "")
    if given.isdigit() and int(given) > 0:
        return int(given), f"OMP_NUM_THREADS, {cores} cores"
    load = os.getloadavg()[0]  # processes running or waiting for a core, over the last minute
    return max(1, min(cores, int(cores - load + 0.5))), f"{cores} cores, load average {load:.1f}"


def probe_speed(size: DemoSize, steps: int = 3) -> float:
    """Training tokens per second of the demo's model here and now: a warm-up step, then `steps` timed
    optimizer steps on random ids. The global RNG is left as it was, so the runs are unchanged."""
    from transformers import AutoModelForCausalLM

    config = preset_config("tiny", size.vocab_size, bos_token_id=None, eos_token_id=0, max_position_embeddings=size.seq_len)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=size.peak_lr)
        ids = torch.randint(size.vocab_size, (size.batch_tokens // size.seq_len, size.seq_len))
        for i in range(steps + 1):
            if i == 1:
                started = time.perf_counter()
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return steps * size.batch_tokens / (time.perf_counter() - started)


def describe_plan(size: DemoSize, corpora: dict[str, Corpus], threads: int, data_seconds: float) -> str:
    """The three runs' training and held-out tokens, and the time they take at the speed probed now."""
    runs = ((size.pretrain_steps, ["prose"]), (size.update_steps, ["code", "prose"]), (size.update_steps, ["code", "prose"]))
    trained = sum(steps for steps, _ in runs) * size.batch_tokens
    evaluated = sum(  # each run evaluates the corpora of its lineage at step 0, every steps // 3, and the end
        len(Every(every=steps // 3).steps(steps)) * size.seq_len
        * sum(heldout_windows(corpora[kind].val, size.seq_len, DEFAULT_EVAL_TOKENS) for kind in kinds)
        for steps, kinds in runs
    )
    speed = probe_speed(size)
    # A forward pass costs about a third of a training step per token (2N of 6N FLOPs).
    left = (trained + evaluated / 3) / speed
    steps = " + ".join(str(steps) for steps, _ in runs)
    return (f"plan: 3 runs of {steps} steps × {size.batch_tokens:,} tokens ({trained:,} tokens trained, {evaluated:,} "
            f"held-out tokens evaluated) at {speed:,.0f} tok/s, probed now on {threads} thread{'s' * (threads != 1)}: "
            f"about {left / 60:.1f} min more, {(data_seconds + left) / 60:.1f} min in all")


def run_demo(store: Store, size: DemoSize = DemoSize(), say=print, threads: int | None = None) -> dict[str, dict[str, float]]:
    """Build the data, pre-train v1, run both updates; return each version's held-out losses.

    `threads` (default: `choose_threads`) is torch's thread count and prepare's workers while the demo runs."""
    threads, why = choose_threads(threads)
    say(f"demo on {threads} CPU thread{'s' * (threads != 1)} ({why}); choose with --threads N")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(store, size, say, threads)
    finally:
        torch.set_num_threads(before)


def _run(store: Store, size: DemoSize, say, threads: int) -> dict[str, dict[str, float]]:
    started = time.monotonic()
    files = stdlib_files()
    for name in VERSIONS:  # the demo starts over its own versions and runs each time
        if store.exists("versions", name):
            remove_version(store, name, force=True)
    corpora = {}
    with tempfile.TemporaryDirectory() as tmp:
        prose = _write_jsonl(Path(tmp) / "prose.jsonl", prose_documents(files))
        code = _write_jsonl(Path(tmp) / "code.jsonl", code_documents(files, size.code_bytes))
        say(f"data: {prose.stat().st_size / 1e6:.1f} MB of prose, {code.stat().st_size / 1e6:.1f} MB of code from {len(files)} standard-library files")
        train_tokenizer(store, NAMES["tokenizer"], [prose, code], size.vocab_size, overwrite=True)
        for kind, path in (("prose", prose), ("code", code)):
            corpus = prepare(store, NAMES[kind], [path], NAMES["tokenizer"], val_fraction=0.05, workers=threads, overwrite=True)
            say(f"corpus {corpus.name}: {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")
            corpora[kind] = corpus
    say(describe_plan(size, corpora, threads, time.monotonic() - started))

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
        cfg = update_config(store, UpdateRequest(
            name=name, parent=VERSIONS[0], data=[NAMES["code"]], replay=replay, recipe="cosine",
            steps=size.update_steps, eval_every=size.update_steps // 3, **common,
        ))
        losses[name] = train(cfg, store, fresh=True)["losses"]
    # v1 never saw code; an update's evaluation at step 0 (v1's weights, before any step) measured it.
    first_eval = next(r for r in read_metrics(store.path("runs", VERSIONS[1]) / "metrics.jsonl") if "eval" in r)
    losses[VERSIONS[0]] = {**first_eval["eval"], **losses[VERSIONS[0]]}
    return losses
