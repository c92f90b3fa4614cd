"""Training throughput of renewlm's loop against a plain transformers loop, in the same run.

For each preset shape: tokens/s, CPU seconds per step (all threads; other work on the cores does not
inflate it, and with OMP_NUM_THREADS=1 no thread spins into it), MFU (6N + 12·L·d·T FLOPs per token, N
without the input embedding; where the device's peak is known), peak memory, and data reading's share.
Both loops train the same model (same shape, vocabulary, batch, precision, optimizer, compile
setting) in separate processes, so peak memory is each one's own.

    python benchmarks/throughput.py --presets tiny small            # CPU
    OMP_NUM_THREADS=1 python benchmarks/throughput.py --presets tiny --compile   # CPU, on a machine others share
    python benchmarks/throughput.py --presets tiny --procs 2        # renewlm's loop under FSDP on 2 processes
    python benchmarks/throughput.py --presets 125m 1b --seq-len 2048 --micro-batch 8 --batch-tokens 131072
    python benchmarks/throughput.py --startup --presets 125m --procs 2   # peak host memory of each process's start-up
    python benchmarks/throughput.py --presets tiny --profile /tmp/prof   # also /tmp/prof-tiny.txt: where renewlm's steps go
    python benchmarks/throughput.py --presets tiny --document-mask      # both loops attend within documents
    python benchmarks/throughput.py --presets tiny --ema 0.999          # renewlm's loop keeping an EMA of the weights

Prints a table and writes benchmarks/results/throughput.json (or startup.json), and the same JSON to
stdout with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
VOCAB = {"tiny": 4096, "small": 32000, "125m": 32000, "350m": 32000, "1b": 128256}


def make_store(root: Path, corpora: tuple[str, ...] = ("bench",), documents: int = 4000) -> Path:
    """A store with a small tokenizer and synthetic corpora; models get their own vocabulary size.

    Each corpus draws its words from its own slice of one shared word list (the first from the
    first 5,000 words, the next from 2,500 later ones on, ...), so a second corpus is a distribution
    shift from the first that the one tokenizer still covers.
    """
    import random

    from renewlm.data.prepare import prepare
    from renewlm.data.tokenizer import train_tokenizer
    from renewlm.store import Store

    store = Store(root / "store")
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(5000 + 2500 * (len(corpora) - 1))]
    texts = []
    for i, name in enumerate(corpora):
        vocabulary = words[2500 * i : 2500 * i + 5000]
        text = root / f"{name}.jsonl"
        with text.open("w") as f:
            for _ in range(documents):
                f.write(json.dumps({"text": " ".join(rng.choice(vocabulary) for _ in range(600))}) + "\n")
        texts.append(text)
    train_tokenizer(store, "bench", texts, 4096)
    for name, text in zip(corpora, texts):
        prepare(store, name, [text], "bench", val_fraction=0.01)
    return store.root


def make_parent(store_root: Path, preset: str, seq_len: int) -> Path:
    """An HF folder with the preset's shape and its usual vocabulary, random weights."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from renewlm.model.presets import preset_config

    folder = store_root.parent / f"parent-{preset}"
    if folder.exists():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(store_root / "tokenizers" / "bench")
    config = preset_config(preset, VOCAB[preset], bos_token_id=tokenizer.eos_token_id,
                           eos_token_id=tokenizer.eos_token_id, max_position_embeddings=max(seq_len, 2048))
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def worker_renewlm(args) -> dict:
    from renewlm.store import Store
    from renewlm.train.config import validate_run
    import torch

    from renewlm.distributed import Dist
    from renewlm.train.loop import train
    from renewlm.train.metrics import read_metrics
    from renewlm.train.run import preflight

    store = Store(args.store)
    name = f"bench-{args.preset}-{os.getppid()}"  # the same on every process torchrun started
    cfg = validate_run({
        "name": name, "parent": str(args.parent), "mixture": {"phases": [{"corpora": {"bench": 1.0}}]},
        "schedule": {"name": "constant", "lr": 1e-4}, "seq_len": args.seq_len, "batch_tokens": args.batch_tokens,
        "micro_batch": args.micro_batch, "steps": args.steps, "eval_tokens": args.seq_len,
        "compile": args.compile, "precision": args.precision, "document_mask": args.document_mask,
        "ema": args.ema,
        # Steps are read from the device in windows of log_every (their times are the window's average):
        # windows of `warmup` steps keep the warm-up steps out of the windows measured.
        "log_every": max(1, args.warmup),
    }, "benchmark")
    # With --profile the last window of steps (they are read in windows of log_every) runs under
    # torch.profiler and is left out of the median.
    profiled_from = measured_to(args)
    cpu_starts = watch_steps(args, profiled_from)
    started = time.perf_counter()
    train(cfg, store, fresh=True)
    wall = time.perf_counter() - started
    if int(os.environ.get("RANK", "0")) != 0:
        return {}
    steps = [r for r in read_metrics(store.path("runs", name) / "metrics.jsonl") if "loss" in r]
    steps = [r for r in steps if r["step"] <= profiled_from][args.warmup:]
    seconds = statistics.median(r["seconds"] for r in steps)
    # The data side of a step, alone: read every micro-batch of a global batch and copy it to the device.
    # The preflight opens the stream without building a model.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run = preflight(cfg.model_copy(update={"name": name + "-data"}), store, Dist.single(device))
    from renewlm.data.stream import rank_indices

    reads = []
    for step in range(min(5, cfg.total_steps)):
        t = time.perf_counter()
        idx = rank_indices(step * cfg.batch_samples, cfg.batch_samples, 0, 1)
        for m in range(0, len(idx), cfg.micro_batch):
            torch.from_numpy(run.stream.read(idx[m : m + cfg.micro_batch])).to(device, non_blocking=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        reads.append(time.perf_counter() - t)
    cpu = [b - a for a, b in zip(cpu_starts, cpu_starts[1:])][args.warmup : profiled_from]
    result = {
        "tokens_per_second": args.batch_tokens / seconds,
        "seconds_per_step": seconds,
        "cpu_seconds_per_step": statistics.median(cpu),
        "mfu": statistics.median(r["mfu"] for r in steps) if "mfu" in steps[0] else None,
        "data_seconds_per_step": statistics.median(reads),
        "wall_seconds": wall,
    }
    if device.type == "cuda":  # the loop resets the device's peak at every window it reads: the largest window's
        result["peak_memory_gib"] = max(r["memory_gib"] for r in steps)
    return result


def measured_to(args) -> int:
    """The last step in the median: with --profile, the steps before the last window of log_every
    (= --warmup) steps, which runs under the profiler."""
    window = max(1, args.warmup)
    return (args.steps - 1) // window * window if args.profile else args.steps


def watch_steps(args, first: int) -> list[float]:
    """Wrap renewlm's step: returns the process's CPU time (all threads) as each step starts (a step's CPU
    seconds are the difference to the next start, its window's logging included); with --profile, runs
    steps `first`..the last under torch.profiler and writes its table of the operators and kernels that
    took the most device (or CPU) time."""
    import torch

    import renewlm.train.loop as loop

    cuda, total = torch.cuda.is_available(), args.steps
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    profiler = torch.profiler.profile(activities=activities)
    starts, step_of_run = [], loop.train_step

    def watched(run, step, pending):
        starts.append(time.process_time())
        if args.profile and step == first:
            profiler.start()
        step_of_run(run, step, pending)
        if args.profile and step == total - 1:
            if cuda:
                torch.cuda.synchronize()
            profiler.stop()
            sort = "self_device_time_total" if cuda else "self_cpu_time_total"
            table = profiler.key_averages().table(sort_by=sort, row_limit=30)
            Path(args.profile).write_text(f"steps {first + 1}..{total}\n" + table)

    loop.train_step = watched
    return starts


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def worker_startup(args) -> dict:
    """Build the run's model as a run does (meta device, shard, load from the main process) and
    report every process's peak host memory above what it held before."""
    import torch
    import torch.distributed as dist
    from transformers import AutoTokenizer

    from renewlm.model.load import ModelSource
    from renewlm.model.parallel import build_model, placement
    from renewlm.distributed import setup, teardown

    d = setup()
    tokenizer = AutoTokenizer.from_pretrained(args.parent)
    before = _rss_bytes()
    where = placement(d.device, d.world, args.precision, False, False)
    started = time.perf_counter()
    torch.manual_seed(0)
    build_model(ModelSource("folder", str(args.parent), args.parent), where, tokenizer=tokenizer,
                trust_remote_code=False, max_position_embeddings=max(args.seq_len, 2048), random_init=False)
    mine = {"rank": d.rank, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "start_gib": before / 2**30, "seconds": time.perf_counter() - started}
    ranks = [mine]
    if d.distributed:
        ranks = [None] * d.world
        dist.all_gather_object(ranks, mine)
    teardown()
    return {"ranks": ranks}


def worker_plain(args) -> dict:
    """What a user would write: transformers model, AdamW, grad accumulation, autocast, compile."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    from renewlm.model.flops import flops_per_token, peak_flops

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    compile_ = args.compile if args.compile is not None else device.type == "cuda"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.parent, attn_implementation="sdpa").to(device)
    model.config.use_cache = False
    if compile_:
        model.compile()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    other = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), fused=True)
    micro = args.batch_tokens // args.seq_len // args.micro_batch
    # The same packed documents renewlm's run reads, in order: windows of seq_len + 1 tokens of the corpus.
    from renewlm.data.corpus import Corpus
    from renewlm.store import Store

    corpus = Corpus.open(Store(args.store), "bench", verify=False)
    window = args.seq_len + 1
    read = 0

    def batch() -> torch.Tensor:
        nonlocal read
        block = corpus.train.read(read * window, args.micro_batch * window).astype("int64")
        read = (read + args.micro_batch) % (corpus.train.num_tokens // window - args.micro_batch)
        return torch.from_numpy(block).view(args.micro_batch, window).to(device)

    def positions(x: torch.Tensor) -> torch.Tensor:
        """Each token's place in its document, restarting after every EOS (packing without padding)."""
        index = torch.arange(x.shape[1], device=x.device).expand_as(x)
        starts = torch.zeros_like(x)
        starts[:, 1:] = torch.where(x[:, :-1] == corpus.eos_id, index[:, 1:], 0)
        return index - starts.cummax(dim=1).values

    times, cpu = [], []  # wall and CPU seconds per step
    for step in range(args.steps):
        t, c = time.perf_counter(), time.process_time()
        for _ in range(micro):
            x = batch()
            extra = {"position_ids": positions(x[:, :-1])} if args.document_mask else {}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=x[:, :-1], **extra).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten()) / micro
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    seconds = statistics.median(times[args.warmup:])
    peak = peak_flops(device)
    tps = args.batch_tokens / seconds
    return {
        "tokens_per_second": tps,
        "seconds_per_step": seconds,
        "cpu_seconds_per_step": statistics.median(cpu[args.warmup:]),
        "mfu": flops_per_token(model.config, args.seq_len) * tps / peak if peak else None,
    }


def run_worker(kind: str, args, store: Path, parent: Path) -> dict:
    procs = args.procs if kind in ("renewlm", "startup") else 1
    launch = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                   f"--nproc_per_node={procs}"]
    cmd = [*launch, __file__, "--worker", kind, "--store", str(store), "--parent", str(parent),
           "--preset", args.preset_now, "--seq-len", str(args.seq_len), "--batch-tokens", str(args.batch_tokens),
           "--micro-batch", str(args.micro_batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--precision", args.precision]
    if args.compile is not None:
        cmd += ["--compile" if args.compile else "--no-compile"]
    if args.document_mask and kind in ("renewlm", "plain"):  # the plain loop passes the same restarting positions
        cmd += ["--document-mask"]
    if args.ema is not None and kind == "renewlm":
        cmd += ["--ema", str(args.ema)]
    if args.profile and kind == "renewlm":
        cmd += ["--profile", f"{args.profile}-{args.preset_now}.txt"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the median (compilation, caches)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--procs", type=int, default=1, help="processes for renewlm's loop (torchrun, FSDP)")
    p.add_argument("--document-mask", action="store_true",
                   help="both loops mask attention per document (renewlm: document_mask; plain: restarting position ids)")
    p.add_argument("--ema", type=float, help="renewlm's loop keeps an EMA of the weights with this decay (ema)")
    p.add_argument("--startup", action="store_true", help="measure start-up host memory per process instead")
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
    p.add_argument("--out", type=Path, help="write the JSON here (default benchmarks/results/throughput.json or startup.json)")
    p.add_argument("--worker", choices=["renewlm", "plain", "startup"])
    p.add_argument("--store", type=Path)
    p.add_argument("--parent", type=Path)
    p.add_argument("--preset")
    p.add_argument("--profile", help="write a torch.profiler table of renewlm's last window of steps to PROFILE-PRESET.txt")
    args = p.parse_args()

    if args.worker:
        worker = {"renewlm": worker_renewlm, "plain": worker_plain, "startup": worker_startup}[args.worker]
        result = worker(args)
        import torch

        if args.worker == "startup" or not result or "peak_memory_gib" in result:
            pass
        elif torch.cuda.is_available():
            result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        else:
            result["peak_memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        if int(os.environ.get("RANK", "0")) == 0:  # one line, not the processes' lines interleaved
            print(json.dumps(result))
        return

    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    if args.startup:
        startup(args, device)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        for preset in args.presets:
            args.preset_now = preset
            parent = make_parent(store, preset, args.seq_len)
            plain = run_worker("plain", args, store, parent)
            ours = run_worker("renewlm", args, store, parent)
            rows.append({"preset": preset, "vocab": VOCAB[preset], "plain": plain, "renewlm": ours})

    print(f"\ndevice: {device}; seq_len {args.seq_len}, batch {args.batch_tokens} tokens, micro-batch {args.micro_batch}, "
          f"precision {args.precision}, compile {args.compile if args.compile is not None else 'auto'}, document_mask {args.document_mask}, ema {args.ema}, "
          f"median of steps {args.warmup + 1}..{measured_to(args)}")
    header = f"{'preset':8} {'loop':8} {'tokens/s':>12} {'CPU s/step':>11} {'MFU':>7} {'peak mem GiB':>13} {'data % of step':>15}"
    print(header)
    print("-" * len(header))
    for row in rows:
        for loop in ("plain", "renewlm"):
            r = row[loop]
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") else "–"
            data = f"{r['data_seconds_per_step'] / r['seconds_per_step']:.2%}" if "data_seconds_per_step" in r else "–"
            print(f"{row['preset']:8} {loop:8} {r['tokens_per_second']:12,.0f} {r['cpu_seconds_per_step']:11.3f} {mfu:>7} {r['peak_memory_gib']:13.2f} {data:>15}")
        ratio = row["renewlm"]["tokens_per_second"] / row["plain"]["tokens_per_second"]
        by_cpu = row["plain"]["cpu_seconds_per_step"] / row["renewlm"]["cpu_seconds_per_step"]
        print(f"{'':8} renewlm / plain: {ratio:.3f} in tokens/s, {by_cpu:.3f} in CPU time per step")
    out = {"device": device, "settings": {k: v for k, v in vars(args).items() if k in ("seq_len", "batch_tokens", "micro_batch", "steps", "warmup", "precision", "compile", "document_mask", "ema")}, "rows": rows}
    path = args.out or RESULTS / "throughput.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    if args.json:
        print(json.dumps(out))


def startup(args, device: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp))
        for preset in args.presets:
            args.preset_now = preset
            result = run_worker("startup", args, store, make_parent(store, preset, args.seq_len))
            rows.append({"preset": preset, "vocab": VOCAB[preset], "procs": args.procs, **result})
    print(f"\ndevice: {device}; start-up on {args.procs} process(es), precision {args.precision}")
    print(f"{'preset':8} {'rank':>4} {'before GiB':>11} {'peak GiB':>9} {'seconds':>8}")
    for row in rows:
        for r in row["ranks"]:
            print(f"{row['preset']:8} {r['rank']:>4} {r['start_gib']:11.2f} {r['peak_gib']:9.2f} {r['seconds']:8.1f}")
        peaks = [r["peak_gib"] - r["start_gib"] for r in row["ranks"]]
        if len(peaks) > 1:
            print(f"{'':8} growth of rank 1 / rank 0: {peaks[1] / peaks[0]:.3f}")
    out = {"device": device, "rows": rows}
    path = args.out or RESULTS / "startup.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwritten: {path}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
