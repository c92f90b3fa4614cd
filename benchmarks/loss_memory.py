"""Peak memory and agreement of the language-model losses, forward and backward, each in a fresh process.

The head of the `1b` preset (hidden 2048, Llama 3's 128,256-token vocabulary) over T tokens:
- `plain`: full fp32 logits (`F.cross_entropy(F.linear(h, W).float(), y)`), the reference;
- `chunked`: renewlm's chunked loss (renewlm/model/loss.py);
- `fused`: liger-kernel's fused linear cross-entropy, as renewlm calls it on CUDA (only there).

Memory is the peak above what the process held once its inputs (hidden states, head weight, targets)
were allocated: the loss's own working memory, the head's gradient included. On CPU it is the
resident peak; on CUDA the allocator's peak, measured on a second call after a warm-up call
(Triton's compilation and autotuning stay out of it). Each loss's value and gradients are compared
with the plain one's: |difference| as a share of the largest |reference| value.

    python benchmarks/loss_memory.py                                           # CPU, fp32, 2 × 2048 tokens
    python benchmarks/loss_memory.py --tokens 1024 --hidden 512                # a quick look
    python benchmarks/loss_memory.py --device cuda --dtype bf16 --tokens 16384 # 8 × 2048, one GPU

Prints a table and writes benchmarks/results/loss_memory.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
KINDS = ("plain", "chunked", "fused")


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def worker(args) -> dict:
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    from renewlm.model.loss import Head, _fused_mean, chunked_cross_entropy

    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    torch.manual_seed(0)
    hidden = torch.randn(args.tokens, args.hidden, device=device).to(dtype).requires_grad_()
    weight = (torch.randn(args.vocab, args.hidden, device=device) * args.hidden**-0.5).to(dtype).requires_grad_()
    targets = torch.randint(0, args.vocab, (args.tokens,), device=device)
    cuda = device.type == "cuda"

    def loss_of():
        if args.kind == "plain":
            return F.cross_entropy(F.linear(hidden, weight).float(), targets)
        if args.kind == "chunked":
            return chunked_cross_entropy(hidden, Head(weight, None), targets)[0].mean()
        fused = _fused_mean(hidden, Head(weight, None), targets, 0.0)
        if fused is None:
            raise SystemExit("fused: liger-kernel is not installed or this is not CUDA")
        return fused.cross_entropy

    if cuda:  # warm-up: Triton compiles and autotunes on the first call
        loss_of().backward()
        hidden.grad = weight.grad = None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = _rss_bytes()
    started = time.perf_counter()
    loss = loss_of()
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    seconds = time.perf_counter() - started
    save_file({"loss": loss.detach().float().reshape(1).cpu(), "hidden_grad": hidden.grad.float().cpu(),
               "weight_grad": weight.grad.float().cpu()}, args.save)
    return {"loss": loss.item(), "peak_bytes": peak - before, "seconds": seconds}


def agreement(reference: dict, other: dict) -> dict:
    """|other - reference| as a share of max |reference|, per tensor."""
    return {name: float((other[name] - ref).abs().max() / ref.abs().max().clamp_min(1e-30)) for name, ref in reference.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=2 * 2048)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--out", type=Path, default=RESULTS / "loss_memory.json")
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kind:
        print(json.dumps(worker(args)))
        return
    from safetensors.torch import load_file

    kinds = KINDS if args.device == "cuda" else KINDS[:2]
    rows, tensors = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            save = str(Path(tmp) / f"{kind}.safetensors")
            cmd = [sys.executable, __file__, "--kind", kind, "--vocab", str(args.vocab), "--hidden", str(args.hidden),
                   "--tokens", str(args.tokens), "--device", args.device, "--dtype", args.dtype, "--save", save]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                rows[kind] = {"error": (out.stdout + out.stderr).strip().splitlines()[-1][:300]}
                continue
            rows[kind] = json.loads(out.stdout.strip().splitlines()[-1])
            tensors[kind] = load_file(save)
        for kind in kinds:
            if kind != "plain" and kind in tensors and "plain" in tensors:
                rows[kind]["relative_difference"] = agreement(tensors["plain"], tensors[kind])
    where = args.device if args.device == "cpu" else __import__("torch").cuda.get_device_name()
    print(f"vocab {args.vocab:,}, hidden {args.hidden}, {args.tokens:,} tokens, {args.dtype}, {where} "
          f"({platform.processor() or platform.machine()})")
    print(f"{'loss':<8} {'peak above inputs':>18} {'fwd+bwd s':>10} {'loss value':>11} {'Δloss':>9} {'Δgrad h':>9} {'Δgrad W':>9}")
    for kind, r in rows.items():
        if "error" in r:
            print(f"{kind:<8} failed: {r['error']}")
            continue
        d = r.get("relative_difference", {})
        cells = "".join(f" {d[n]:>9.2e}" if n in d else f" {'–':>9}" for n in ("loss", "hidden_grad", "weight_grad"))
        print(f"{kind:<8} {r['peak_bytes'] / 2**30:>14.2f} GiB {r['seconds']:>10.3f} {r['loss']:>11.6f}{cells}")
    result = {"vocab": args.vocab, "hidden": args.hidden, "tokens": args.tokens, "dtype": args.dtype, "device": where,
              "machine": platform.machine(), "rows": rows}
    if "peak_bytes" in rows.get("chunked", {}) and "peak_bytes" in rows.get("plain", {}):
        result["chunked_over_plain"] = rows["chunked"]["peak_bytes"] / rows["plain"]["peak_bytes"]
        print(f"chunked / plain peak: {result['chunked_over_plain']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if any("error" in r for r in rows.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
