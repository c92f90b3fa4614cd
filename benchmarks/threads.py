"""CPU threads on a shared machine: tokens/s of one small training run at each OMP_NUM_THREADS, on an
idle machine and with another process keeping one core busy.

    python benchmarks/threads.py [--preset small] [--steps 12] [--threads 1 2]

Each run is `renewlm train` in its own process (the first 2 steps are left out as warmup); the busy
core is a Python loop in a separate process. Prints a table and writes benchmarks/results/threads.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def busy(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run(store: Path, preset: str, steps: int, threads: int, tag: str) -> float:
    import yaml

    name = f"threads-{preset}-{threads}-{tag}"
    cfg = {
        "name": name, "preset": preset, "tokenizer": "bench", "mixture": {"phases": [{"corpora": {"bench": 1.0}}]},
        "schedule": {"name": "constant", "lr": 1e-3}, "seq_len": 256, "batch_tokens": 4096, "micro_batch": 4,
        "steps": steps, "eval_tokens": 256,
    }
    path = store.parent / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([sys.executable, "-m", "renewlm", "train", str(path), "--fresh", "--store", str(store)],
                   env=env, check=True, capture_output=True)
    lines = [json.loads(x) for x in (store / "runs" / name / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["tokens_per_second"] for r in lines if "tokens_per_second" in r][2:]
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import make_store

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        for load in ("idle", "one core busy"):
            stop = multiprocessing.Event()
            hog = multiprocessing.Process(target=busy, args=(stop,)) if load != "idle" else None
            if hog:
                hog.start()
            try:
                for threads in args.threads:
                    tps = run(store, args.preset, args.steps, threads, load.split()[0])
                    rows.append({"load": load, "threads": threads, "tokens_per_second": tps})
            finally:
                if hog:
                    stop.set()
                    hog.join()
    print(f"{args.preset} preset, seq 256, batch 4,096 tokens, fp32, {os.cpu_count()} cores ({platform.processor() or platform.machine()})")
    print(f"{'machine':<16}{'OMP_NUM_THREADS':>16}{'tok/s':>10}")
    for r in rows:
        print(f"{r['load']:<16}{r['threads']:>16}{r['tokens_per_second']:>10,.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps({"preset": args.preset, "cores": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
