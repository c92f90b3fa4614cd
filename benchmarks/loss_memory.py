"""Peak memory of the plain loss (full fp32 logits) against renewlm's chunked one, forward and backward.

The head of the `1b` preset (hidden 2048, Llama 3's 128,256-token vocabulary) over 2 × 2048 tokens in
fp32 on CPU, each loss in a fresh process. Memory is the peak resident size above what the process
held once its inputs (hidden states, head weight, targets) were allocated: the loss's own working
memory, the head's fp32 gradient (1 GiB here, needed by both) included.

    python benchmarks/loss_memory.py
    python benchmarks/loss_memory.py --tokens 1024 --hidden 512     # a quick look

Prints a table and writes benchmarks/results/loss_memory.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def worker(args) -> dict:
    import torch
    import torch.nn.functional as F

    from renewlm.model.loss import Head, chunked_cross_entropy

    torch.manual_seed(0)
    hidden = torch.randn(args.tokens, args.hidden, requires_grad=True)
    weight = (torch.randn(args.vocab, args.hidden) * args.hidden**-0.5).requires_grad_()
    targets = torch.randint(0, args.vocab, (args.tokens,))
    before = _rss_bytes()
    started = time.perf_counter()
    if args.kind == "plain":
        loss = F.cross_entropy(F.linear(hidden, weight).float(), targets)
    else:
        loss = chunked_cross_entropy(hidden, Head(weight, None), targets).mean()
    loss.backward()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {"loss": loss.item(), "peak_bytes": peak - before, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=2 * 2048)
    parser.add_argument("--kind", choices=["plain", "chunked"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        print(json.dumps(worker(args)))
        return
    rows = {}
    for kind in ("plain", "chunked"):
        cmd = [sys.executable, __file__, "--kind", kind, "--vocab", str(args.vocab), "--hidden", str(args.hidden),
               "--tokens", str(args.tokens)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows[kind] = json.loads(out.strip().splitlines()[-1])
    ratio = rows["chunked"]["peak_bytes"] / rows["plain"]["peak_bytes"]
    print(f"vocab {args.vocab:,}, hidden {args.hidden}, {args.tokens:,} tokens, fp32, {platform.processor() or platform.machine()}")
    print(f"{'loss':<8} {'peak above inputs':>18} {'fwd+bwd s':>10} {'loss value':>11}")
    for kind, r in rows.items():
        print(f"{kind:<8} {r['peak_bytes'] / 2**30:>14.2f} GiB {r['seconds']:>10.1f} {r['loss']:>11.6f}")
    print(f"chunked / plain peak: {ratio:.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"vocab": args.vocab, "hidden": args.hidden, "tokens": args.tokens, "dtype": "float32",
              "machine": platform.machine(), "rows": rows, "chunked_over_plain": ratio}
    (RESULTS / "loss_memory.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
