"""Golden loss curves: the tiny preset on fixed synthetic data for 50 steps, in one process and in two
gloo processes (and once with document masking and a z-loss), checked against tests/train/golden.json. A change that alters training shows here.

A change meant to alter training rewrites the curves in the same commit and says why:

    RENEWLM_WRITE_GOLDEN=1 pytest tests/train/test_golden.py

The data is generated here from a seeded generator (not read from the Python install, whose texts
change between Python versions), so every machine trains on the same tokens.
"""

import json
import os
import random
from pathlib import Path

import pytest
import yaml

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.store import Store
from renewlm.train.metrics import read_metrics
from tests.conftest import write_jsonl
from tests.train.test_resume import finish, renewlm

GOLDEN = Path(__file__).with_name("golden.json")
STEPS = 50
# Float sums differ in their last bits between CPU kernels (AVX2 vs AVX-512) and between one process and
# two: the two curves here differ by at most 9e-6. A real change moves them far more: weight decay 0
# instead of 0.1 moves the loss by up to 8.8e-3 within these 50 steps.
TOLERANCE = 2e-4

WORDS = ("the model reads new data and keeps what it learned before while the rate warms and decays again "
         "each release replays a share of old text so forgetting stays small and the cost is a fraction").split()


def synthetic_texts(seed: int, documents: int = 600) -> list[str]:
    """Documents of Zipf-weighted words with a little grammar (pairs that follow each other), seeded."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    texts = []
    for _ in range(documents):
        words = []
        for _ in range(rng.randint(8, 120)):
            word = rng.choices(WORDS, weights)[0]
            words.append(word)
            if rng.random() < 0.5:  # a fixed successor: something to learn beyond unigram counts
                words.append(WORDS[(WORDS.index(word) * 7 + 3) % len(WORDS)])
        texts.append(" ".join(words) + ".")
    return texts


RUNS = {  # name: (processes, run-file fields beyond the base run)
    "one_process": (1, {}),
    "two_processes": (2, {}),
    "document_mask_z_loss": (1, {"document_mask": True, "z_loss": 1e-4}),  # the options that change the loss itself
}


def base_run(name: str, **overrides) -> dict:
    run = {
        "name": name, "preset": "tiny", "tokenizer": "tok",
        "mixture": {"phases": [{"corpora": {"golden": 1.0}}]},
        "schedule": {"name": "cosine", "peak_lr": 3e-3},
        "seq_len": 64, "batch_tokens": 64 * 8, "micro_batch": 2, "steps": STEPS,
        "eval_tokens": 2048, "log_every": 10, "seed": 3,
    }
    return {**run, **overrides}


@pytest.fixture(scope="module")
def golden_store(tmp_path_factory) -> Store:
    tmp = tmp_path_factory.mktemp("golden")
    store = Store(tmp / "store")
    texts = write_jsonl(tmp / "golden.jsonl", synthetic_texts(seed=0))
    train_tokenizer(store, "tok", [texts], 300)
    prepare(store, "golden", [texts], "tok", val_fraction=0.1, workers=1)
    return store


def curve(store: Store, name: str) -> dict:
    rows = read_metrics(store.path("runs", name) / "metrics.jsonl")
    steps = [r for r in rows if "loss" in r]
    return {
        "loss": [round(r["loss"], 6) for r in steps],
        "grad_norm": [round(r["grad_norm"], 6) for r in steps],
        "lr": [r["lr"] for r in steps],
        "batch_token_sum": [r["batch_token_sum"] for r in steps],
        "heldout": [{"step": r["step"], **{c: round(v, 6) for c, v in r["eval"].items()}} for r in rows if "eval" in r],
    }


@pytest.mark.parametrize("run", list(RUNS))
def test_golden_curve(golden_store, tmp_path, run):
    procs, fields = RUNS[run]
    path = tmp_path / f"{run}.yaml"
    path.write_text(yaml.safe_dump(base_run(run, **fields)))
    finish(renewlm(golden_store, "train", str(path), "--fresh", procs=procs))
    got = curve(golden_store, run)
    assert len(got["loss"]) == STEPS
    if os.environ.get("RENEWLM_WRITE_GOLDEN"):
        golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        golden[run] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(GOLDEN.read_text())[run]
    assert got["batch_token_sum"] == want["batch_token_sum"], "the data read changed"
    assert got["lr"] == pytest.approx(want["lr"], rel=1e-9), "the schedule changed"
    assert got["loss"] == pytest.approx(want["loss"], abs=TOLERANCE), "the training loss curve changed"
    assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=TOLERANCE, abs=TOLERANCE), "the gradient norms changed"
    assert len(got["heldout"]) == len(want["heldout"])
    for a, b in zip(got["heldout"], want["heldout"]):
        assert a == pytest.approx(b, abs=TOLERANCE), "the held-out losses changed"


def test_one_and_two_processes_follow_the_same_golden_curve():
    golden = json.loads(GOLDEN.read_text())
    one, two = golden["one_process"], golden["two_processes"]
    assert one["batch_token_sum"] == two["batch_token_sum"]
    assert one["loss"] == pytest.approx(two["loss"], abs=TOLERANCE)
