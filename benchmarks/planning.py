"""Planning the mixture stream: time and memory to build it for 1e6 to 1e12 samples, and to locate
a batch at the end of it, against the per-sample greedy loop it replaced.

Each case runs in a fresh process (peak RSS is the process's; the baseline is an empty process
that has imported renewlm and numpy). Corpora are stand-ins that only report their size, so the
figures are the stream's own.

    python benchmarks/planning.py

Prints a table and writes benchmarks/results/planning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

CASES = {
    "3 corpora, 0.5/0.3/0.2": {"a": 0.5, "b": 0.3, "c": 0.2},
    "3 corpora, token-count weights": {"a": 123_456_789, "b": 987_654_321, "c": 55_555_555},
    "16 corpora, 0.01..0.16": {f"c{i}": round(0.01 * (i + 1), 2) for i in range(16)},
}

CHILD = """
import json, resource, sys, time
from types import SimpleNamespace
import numpy as np
from renewlm.data.mixture import single
from renewlm.data.stream import MixtureStream
weights, total = json.loads(sys.argv[1]), int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
class Sized:
    num_tokens = 10**15
    def read(self, start, length):
        return np.zeros(length, dtype=np.int64)
corpora = {n: SimpleNamespace(train=Sized(), tokenizer_fingerprint="x") for n in weights}
t = time.perf_counter()
stream = MixtureStream(single(weights), corpora, seq_len=2048, total_samples=total, seed=0)
build = time.perf_counter() - t
t = time.perf_counter()
src, j = stream.locate(np.arange(total - 512, total))
locate = time.perf_counter() - t
counts = stream.counts_before(total)
assert counts.sum() == total
print(json.dumps({"build_seconds": build, "locate_512_ms": locate * 1e3,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "baseline_rss_mb": before,
                  "period": int(stream._phases[0][1].period)}))
"""

GREEDY = """
import json, sys, time
import numpy as np
weights, n = json.loads(sys.argv[1]), int(sys.argv[2])
w = [x / sum(weights.values()) for x in weights.values()]
# The loop `_interleave` ran before (one byte per sample, a Python step per sample).
counts, chosen, pairs = [0] * len(w), bytearray(n), list(enumerate(w))
t = time.perf_counter()
for k in range(n):
    k1 = k + 1
    best, best_deficit = 0, w[0] * k1 - counts[0]
    for s, ws in pairs[1:]:
        d = ws * k1 - counts[s]
        if d > best_deficit:
            best, best_deficit = s, d
    counts[best] += 1
    chosen[k] = best
print(json.dumps({"seconds_per_sample": (time.perf_counter() - t) / n}))
"""


def child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e9, 1e12])
    p.add_argument("--greedy-samples", type=int, default=2_000_000, help="samples for the old loop's per-sample time")
    args = p.parse_args()

    rows = []
    for name, weights in CASES.items():
        old = child(GREEDY, json.dumps(weights), str(args.greedy_samples))["seconds_per_sample"]
        for size in args.sizes:
            r = child(CHILD, json.dumps(weights), str(int(size)))
            rows.append({"case": name, "samples": int(size), **r, "old_loop_seconds_estimated": old * size,
                         "old_loop_bytes": int(size)})
    print(f"{'case':34} {'samples':>10} {'period':>7} {'build s':>9} {'locate 512 ms':>14} {'peak RSS MB':>12} "
          f"{'(import)':>9} {'old loop s':>11} {'old bytes':>10}")
    for r in rows:
        print(f"{r['case']:34} {r['samples']:>10.0e} {r['period']:>7} {r['build_seconds']:>9.4f} {r['locate_512_ms']:>14.3f} "
              f"{r['peak_rss_mb']:>12.0f} {r['baseline_rss_mb']:>9.0f} {r['old_loop_seconds_estimated']:>11.3g} "
              f"{r['old_loop_bytes']:>10.2g}")
    RESULTS.mkdir(exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    out = {"machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    (RESULTS / "planning.json").write_text(json.dumps(out, indent=2))
    print(f"written to {RESULTS / 'planning.json'} ({machine})")


if __name__ == "__main__":
    main()
