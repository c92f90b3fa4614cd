"""One precision recipe: do one process and two agree as closely in bf16 as in fp32?

renewlm's bf16 is FSDP2's MixedPrecisionPolicy (bf16 compute, fp32 master weights and gradient
reduction), sharded even in one process, never autocast: so one process and N compute alike. This
script trains the `tiny` preset on the same samples four ways per precision and compares the loss
curves step by step:

- 1 process against 2 (gloo): what changes with the world size;
- 1 process with its micro-batch halved (same samples, gradients accumulated in another grouping):
  the rounding noise of the precision itself, the yardstick for the first.

If the recipe is one, the 1-vs-2 gap is of the order of the regrouping gap in both precisions.

    python benchmarks/precision.py                 # 40 steps, CPU, about 5 minutes on 2 cores
    python benchmarks/precision.py --steps 100

Prints a table and writes benchmarks/results/precision.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from throughput import RESULTS, make_store  # noqa: E402


def train(store: Path, name: str, precision: str, procs: int, micro_batch: int, steps: int) -> list[float]:
    run = {
        "name": name, "preset": "tiny", "tokenizer": "bench", "mixture": {"phases": [{"corpora": {"bench": 1.0}}]},
        "schedule": {"name": "cosine", "peak_lr": 2e-3}, "seq_len": 128, "batch_tokens": 128 * 8,
        "micro_batch": micro_batch, "steps": steps, "precision": precision, "seed": 0, "eval_every": 0,
    }
    path = store / f"{name}.yaml"
    path.write_text(yaml.safe_dump(run))
    launcher = [sys.executable, "-m", "renewlm"] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "renewlm"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([*launcher, "train", str(path), "--fresh", "--store", str(store)], check=True, env=env, capture_output=True)
    lines = (store / "runs" / name / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


def gap(a: list[float], b: list[float]) -> dict:
    diffs = [abs(x - y) for x, y in zip(a, b)]
    return {"max": max(diffs), "mean": sum(diffs) / len(diffs), "first": diffs[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        for precision in ("fp32", "bf16"):
            one = train(store, f"{precision}-1", precision, 1, 8, args.steps)
            two = train(store, f"{precision}-2", precision, 2, 4, args.steps)  # 4 a process: the same 8 samples a step
            regrouped = train(store, f"{precision}-1-mb4", precision, 1, 4, args.steps)
            rows.append({"precision": precision, "one_vs_two": gap(one, two), "regrouped": gap(one, regrouped),
                         "final_loss": one[-1]})
    print(f"{'precision':<10}{'1 vs 2 processes: max |Δloss|':>32}{'mean':>10}{'regrouped (1 process): max':>30}{'mean':>10}")
    for r in rows:
        print(f"{r['precision']:<10}{r['one_vs_two']['max']:>32.2e}{r['one_vs_two']['mean']:>10.2e}"
              f"{r['regrouped']['max']:>30.2e}{r['regrouped']['mean']:>10.2e}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "precision.json"
    out.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
