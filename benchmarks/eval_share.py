"""The share of a run's wall time spent in held-out evaluation.

Two runs of the demo's shape (tiny preset, seq_len 128, 4,096-token batches, micro-batch 32, two
corpora evaluated, 65,536 held-out tokens each): one at the demo's cadence (every steps/3), one
every 50 steps. Each run's evaluation time is measured directly, one held-out pass of the finished
version over both corpora timed (median of 3) and multiplied by the evaluations the run made
(its `eval` records in metrics.jsonl), and set against the run's wall time.

    python benchmarks/eval_share.py                 # 240 steps, as the demo's pre-training
    python benchmarks/eval_share.py --steps 120

Prints a table and writes benchmarks/results/eval_share.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SEQ_LEN, BATCH_TOKENS, MICRO_BATCH, EVAL_TOKENS = 128, 4096, 32, 65536


def make_store(root: Path):
    from renewlm.data.prepare import prepare
    from renewlm.data.tokenizer import train_tokenizer
    from renewlm.store import Store

    store = Store(root / "store")
    rng = random.Random(0)
    paths = []
    for name in ("a", "b"):
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"text": " ".join(rng.choice(words) for _ in range(400))}) + "\n" for _ in range(3000)))
        paths.append(path)
    train_tokenizer(store, "bench", paths, 4096)
    for name, path in zip(("a", "b"), paths):
        prepare(store, name, [path], "bench", val_fraction=0.1, workers=1)
    return store


def run_once(store, name: str, steps: int, eval_every: int) -> dict:
    import torch

    from renewlm.data.corpus import Corpus
    from renewlm.distributed import Dist
    from renewlm.eval.evaluator import HeldOut
    from renewlm.train.config import validate_run
    from renewlm.train.loop import train
    from renewlm.train.metrics import read_metrics
    from renewlm.versions import load_version

    cfg = validate_run({
        "name": name, "preset": "tiny", "tokenizer": "bench", "mixture": {"phases": [{"corpora": {"a": 0.5, "b": 0.5}}]},
        "schedule": {"name": "cosine", "peak_lr": 2e-3}, "seq_len": SEQ_LEN, "batch_tokens": BATCH_TOKENS,
        "micro_batch": MICRO_BATCH, "steps": steps, "eval_every": eval_every, "eval_tokens": EVAL_TOKENS,
    }, name)
    started = time.perf_counter()
    train(cfg, store, fresh=True)
    wall = time.perf_counter() - started
    records = read_metrics(store.path("runs", name) / "metrics.jsonl")
    evaluations = sum(1 for r in records if "eval" in r)
    step_seconds = sum(r["seconds"] for r in records if "loss" in r)

    model, _ = load_version(store, name)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    corpora = {n: Corpus.open(store, n) for n in ("a", "b")}
    heldout = HeldOut(corpora, seq_len=SEQ_LEN, max_tokens=EVAL_TOKENS, micro_batch=MICRO_BATCH, dist_=Dist.single(device))
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        heldout.evaluate(model)
        passes.append(time.perf_counter() - t)
    one = statistics.median(passes)
    return {
        "run": name, "steps": steps, "eval_every": eval_every, "evaluations": evaluations,
        "wall_seconds": wall, "step_seconds": step_seconds, "eval_pass_seconds": one,
        "eval_seconds": one * evaluations, "eval_share": one * evaluations / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=240, help="optimizer steps per run (the demo pre-trains 240)")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        rows = [run_once(store, "demo-cadence", args.steps, args.steps // 3), run_once(store, "every-50", args.steps, 50)]
    print(f"{'run':<14}{'steps':>6}{'evals':>6}{'wall s':>9}{'steps s':>9}{'1 eval s':>10}{'eval s':>8}{'eval share':>12}")
    for r in rows:
        print(f"{r['run']:<14}{r['steps']:>6}{r['evaluations']:>6}{r['wall_seconds']:>9.1f}{r['step_seconds']:>9.1f}"
              f"{r['eval_pass_seconds']:>10.2f}{r['eval_seconds']:>8.1f}{r['eval_share']:>11.1%}")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    RESULTS.mkdir(exist_ok=True)
    out = {"device": device, "host": platform.node(), "seq_len": SEQ_LEN, "batch_tokens": BATCH_TOKENS,
           "micro_batch": MICRO_BATCH, "eval_tokens": EVAL_TOKENS, "runs": rows}
    (RESULTS / "eval_share.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"device: {device}; wrote {RESULTS / 'eval_share.json'}")


if __name__ == "__main__":
    main()
