"""Hashing speed of manifests: how long verifying a checkpoint takes before a resume, by thread count.

A single-process checkpoint is one large `.distcp` file, the hard case (per-file parallelism would
hash it on one core); manifests hash 64 MiB pieces, so every thread helps. The files are written
first and then read from the page cache, so the figures are sha256's and the threads', not the
disk's: on a cold cache the disk's read speed caps them.

    python benchmarks/verify.py [--gb 2] [--files 1] [--threads 1 2 4 8]

Prints a table (GB, files, threads, seconds, GB/s, seconds for 15 GB) and writes
benchmarks/results/verify.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from renewlm.manifest import hash_threads, verify_in_background, verify_manifest, write_manifest

RESULTS = Path(__file__).parent / "results"


def make_files(folder: Path, gb: float, files: int) -> int:
    size = int(gb * 1e9) // files
    block = os.urandom(16 << 20)
    for i in range(files):
        with open(folder / f"__{i}_0.distcp", "wb") as f:
            left = size
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
    return size * files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gb", type=float, default=2.0, help="Total size of the checkpoint's files.")
    parser.add_argument("--files", type=int, default=1, help="How many files (one per process that saved).")
    default_threads = sorted({1, 2, 4, 8, 16, hash_threads()} & set(range(1, hash_threads() + 1)))
    parser.add_argument("--threads", type=int, nargs="+", default=default_threads)
    parser.add_argument("--repeat", type=int, default=2, help="Runs per thread count; the fastest is kept.")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="renewlm-verify-"))
    try:
        total = make_files(folder, args.gb, args.files)
        write_manifest(folder)
        verify_manifest(folder, "warm-up")  # the page cache holds every byte from here on
        rows = []
        for threads in args.threads:
            best = min(_timed(folder, threads) for _ in range(args.repeat))
            rows.append({
                "gb": total / 1e9, "files": args.files, "threads": threads, "seconds": best,
                "gb_per_second": total / 1e9 / best, "seconds_for_15_gb": 15 * best / (total / 1e9),
            })
        started = time.perf_counter()
        pending = verify_in_background(folder, "checkpoint")
        returned = time.perf_counter() - started
        pending.result()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{'GB':>6} {'files':>5} {'threads':>7} {'seconds':>8} {'GB/s':>6} {'s for 15 GB':>11}")
    for r in rows:
        print(f"{r['gb']:6.2f} {r['files']:5d} {r['threads']:7d} {r['seconds']:8.2f} {r['gb_per_second']:6.2f} {r['seconds_for_15_gb']:11.1f}")
    print(f"verify_in_background returned to its caller after {returned * 1e3:.2f} ms")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "page_cache": True,
        "rows": rows,
        "background_return_ms": returned * 1e3,
    }
    (RESULTS / "verify.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS / 'verify.json'}")


def _timed(folder: Path, threads: int) -> float:
    started = time.perf_counter()
    verify_manifest(folder, "checkpoint", threads=threads)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
