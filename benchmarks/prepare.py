"""`prepare` throughput and memory against the `datasets` way, and the mixture stream's read latency.

1. Throughput (MB/s, tokens/s) on a generated JSON-lines file (≥ 200 MB by default), side by side
   with what a user would otherwise write: `datasets.load_dataset("json")` + `.map(batched=True,
   num_proc=N)` with the same fast tokenizer, appending EOS. Both must produce the same token array.
2. Peak memory of `renewlm prepare` at two input sizes (main process and its largest worker).
3. Reading one batch of 64 × 2049 tokens from a 3-corpus mixture (median over random steps).
4. Peak memory of `renewlm prepare` on one huge document (50 MB of text in one JSON line), which it
   tokenizes in ~1 MB pieces, against the peak of encoding a smaller text whole in one call.

    python benchmarks/prepare.py --size-mb 200 --workers 2
    python benchmarks/prepare.py --only-long-document --long-document-mb 50

Prints tables and writes benchmarks/results/prepare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def generate(path: Path, size_mb: float, seed: int = 0) -> Path:
    """Documents of English-like text: words of the Python reference drawn with Zipf-like weights."""
    import pydoc_data.topics

    words = sorted({w for text in pydoc_data.topics.topics.values() for w in text.split() if w.isalpha()})
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    order = rng.permutation(len(words))
    vocab = np.array(words, dtype=object)[order]
    target = int(size_mb * 1e6)
    written = 0
    with path.open("w") as f:
        while written < target:
            lengths = rng.integers(50, 2000, size=256)
            ids = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
            pos = 0
            lines = []
            for n in lengths:
                lines.append(json.dumps({"text": " ".join(vocab[ids[pos : pos + n]]), "id": written}) + "\n")
                pos += n
            chunk = "".join(lines)
            f.write(chunk)
            written += len(chunk)
    return path


def measure_renewlm(store: Path, name: str, data: Path, workers: int) -> dict:
    """`renewlm prepare` in a fresh process: wall time, peak RSS of the main process and of a worker."""
    code = f"""
import json, resource, sys, time
from renewlm.store import Store
from renewlm.data.prepare import prepare
t = time.perf_counter()
c = prepare(Store({str(store)!r}), {name!r}, [{str(data)!r}], "bench", val_fraction=0.0, workers={workers})
seconds = time.perf_counter() - t
print(json.dumps({{"seconds": seconds, "tokens": c.train.num_tokens,
                  "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate_one_document(path: Path, size_mb: float) -> Path:
    """One JSON line whose text is `size_mb` MB of the generated English-like words."""
    words = generate(path.with_suffix(".words.jsonl"), size_mb, seed=4)
    text = " ".join(json.loads(line)["text"] for line in words.read_text().splitlines())
    words.unlink()
    path.write_text(json.dumps({"text": text[: int(size_mb * 1e6)]}) + "\n")
    return path


def measure_whole_encode(tokenizer_dir: Path, data: Path) -> dict:
    """Peak RSS of encoding the document of `data` in one tokenizer call, as prepare did before."""
    code = f"""
import json, resource
from tokenizers import Tokenizer
tok = Tokenizer.from_file({str(tokenizer_dir / "tokenizer.json")!r})
text = json.loads(open({str(data)!r}).read())["text"]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ids = tok.encode(text, add_special_tokens=False).ids
print(json.dumps({{"tokens": len(ids), "before_mb": before, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def long_document(tmp: Path, store, args) -> dict:
    big = generate_one_document(tmp / "one-doc.jsonl", args.long_document_mb)
    small = generate_one_document(tmp / "one-small-doc.jsonl", args.whole_mb)
    result = {"document_mb": big.stat().st_size / 1e6, "whole_document_mb": small.stat().st_size / 1e6}
    for workers in (1, 2):
        result[f"prepare_workers_{workers}"] = measure_renewlm(store.root, f"long{workers}", big, workers)
    result["whole_encode"] = measure_whole_encode(store.path("tokenizers", "bench"), small)
    w = result["whole_encode"]
    print(f"\none document of {result['document_mb']:.0f} MB (tokenized in pieces of ~1 MB):")
    print(f"{'workers':>8} {'seconds':>8} {'tokens':>12} {'main MB':>8} {'worker MB':>10}")
    for workers in (1, 2):
        r = result[f"prepare_workers_{workers}"]
        print(f"{workers:>8} {r['seconds']:8.1f} {r['tokens']:12,} {r['main_peak_mb']:8.0f} {r['worker_peak_mb']:10.0f}")
    print(f"encoding {result['whole_document_mb']:.0f} MB whole in one call: peak {w['peak_mb']:.0f} MB "
          f"({(w['peak_mb'] - w['before_mb']) / result['whole_document_mb']:.0f} MB per MB of text above the {w['before_mb']:.0f} MB before)")
    return result


def measure_datasets(tokenizer_dir: Path, data: Path, workers: int, cache: Path) -> dict:
    """What a user would write with `datasets`, in a fresh process, and the tokens it produced."""
    code = f"""
import json, resource, time
import numpy as np
import datasets
from transformers import AutoTokenizer
datasets.disable_progress_bars()
tok = AutoTokenizer.from_pretrained({str(tokenizer_dir)!r})
eos = tok.eos_token_id
def tokenize(batch):
    return {{"input_ids": [ids + [eos] for ids in tok(batch["text"])["input_ids"]]}}
t = time.perf_counter()
ds = datasets.load_dataset("json", data_files={str(data)!r}, split="train", cache_dir={str(cache)!r})
ds = ds.map(tokenize, batched=True, num_proc={workers}, remove_columns=ds.column_names)
seconds = time.perf_counter() - t
flat = ds.data.column("input_ids").combine_chunks().flatten().to_numpy()
np.save({str(cache / "baseline.npy")!r}, flat.astype(np.uint16))
print(json.dumps({{"seconds": seconds, "tokens": int(len(flat)),
                  "main_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_reads(store_root: Path, names: list[str], seq_len: int = 2048, batch: int = 64, trials: int = 300) -> dict:
    from renewlm.data.corpus import Corpus
    from renewlm.data.mixture import validate_mixture
    from renewlm.data.stream import MixtureStream, rank_indices
    from renewlm.store import Store

    store = Store(store_root)
    spec = validate_mixture({"phases": [{"corpora": {names[0]: 0.5, names[1]: 0.3, names[2]: 0.2}}]})
    corpora = {n: Corpus.open(store, n) for n in names}
    total = 2_000_000
    t = time.perf_counter()
    stream = MixtureStream(spec, corpora, seq_len=seq_len, total_samples=total, seed=0)
    build_seconds = time.perf_counter() - t
    rng = np.random.default_rng(0)
    times = []
    for step in rng.integers(0, total // batch, size=trials):
        t = time.perf_counter()
        block = stream.read(rank_indices(int(step) * batch, batch, 0, 1))
        times.append(time.perf_counter() - t)
    assert block.shape == (batch, seq_len + 1)
    return {"batch": batch, "seq_len": seq_len, "median_ms": statistics.median(times) * 1e3,
            "p90_ms": float(np.percentile(times, 90) * 1e3), "stream_samples": total, "stream_build_seconds": build_seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size-mb", type=float, default=200)
    p.add_argument("--small-mb", type=float, default=50, help="the second size for the memory comparison")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--long-document-mb", type=float, default=50, help="size of the one-document input")
    p.add_argument("--whole-mb", type=float, default=5, help="size of the text encoded whole for comparison")
    p.add_argument("--only-long-document", action="store_true", help="measure the one-document case only")
    args = p.parse_args()

    from renewlm.data.tokenizer import train_tokenizer
    from renewlm.store import Store

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if args.only_long_document:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            store = Store(tmp / "store")
            train_tokenizer(store, "bench", [generate(tmp / "sample.jsonl", 5, seed=2)], args.vocab_size)
            result = long_document(tmp, store, args)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "prepare_long_document.json").write_text(json.dumps({"machine": machine, **result}, indent=2))
        print(f"written: {RESULTS / 'prepare_long_document.json'}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = generate(tmp / "big.jsonl", args.size_mb, seed=0)
        small = generate(tmp / "small.jsonl", args.small_mb, seed=1)
        mb = {"big": big.stat().st_size / 1e6, "small": small.stat().st_size / 1e6}
        sample = generate(tmp / "sample.jsonl", 5, seed=2)
        store = Store(tmp / "store")
        train_tokenizer(store, "bench", [sample], args.vocab_size)

        ours = measure_renewlm(store.root, "big", big, args.workers)
        theirs = measure_datasets(store.path("tokenizers", "bench"), big, args.workers, tmp / "hf-cache")
        from renewlm.data.corpus import Corpus

        mine = np.asarray(Corpus.open(store, "big").train.read(0, ours["tokens"]))
        same = bool(np.array_equal(mine, np.load(tmp / "hf-cache" / "baseline.npy")))
        small_run = measure_renewlm(store.root, "small", small, args.workers)
        generate(tmp / "third.jsonl", 20, seed=3)
        measure_renewlm(store.root, "third", tmp / "third.jsonl", args.workers)
        reads = measure_reads(store.root, ["big", "small", "third"])

    rows = [("renewlm prepare", ours), ("datasets load_dataset + map", theirs)]
    print(f"\nmachine: {machine}; input {mb['big']:.0f} MB JSON lines; {args.workers} workers; vocab {args.vocab_size}")
    print(f"{'':30} {'seconds':>8} {'MB/s':>7} {'Mtokens/s':>10} {'main MB':>8} {'worker MB':>10}")
    for label, r in rows:
        print(f"{label:30} {r['seconds']:8.1f} {mb['big'] / r['seconds']:7.1f} {r['tokens'] / r['seconds'] / 1e6:10.2f} "
              f"{r['main_peak_mb']:8.0f} {r['worker_peak_mb']:10.0f}")
    print(f"same token array: {same} ({ours['tokens']:,} tokens); renewlm / datasets speed: {theirs['seconds'] / ours['seconds']:.2f}x")
    print(f"\npeak memory of renewlm prepare ({args.workers} workers):")
    print(f"{'input MB':>9} {'main MB':>8} {'worker MB':>10} {'main + workers MB':>18}")
    for size, r in ((mb["small"], small_run), (mb["big"], ours)):
        print(f"{size:9.0f} {r['main_peak_mb']:8.0f} {r['worker_peak_mb']:10.0f} {r['main_peak_mb'] + args.workers * r['worker_peak_mb']:18.0f}")
    print(f"\nmixture stream read, 3 corpora (0.5/0.3/0.2), {reads['batch']} × {reads['seq_len'] + 1} tokens: "
          f"median {reads['median_ms']:.3f} ms, p90 {reads['p90_ms']:.3f} ms "
          f"(index for {reads['stream_samples']:,} samples built in {reads['stream_build_seconds']:.2f} s)")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": machine, "workers": args.workers, "input_mb": mb, "renewlm": ours, "datasets": theirs,
           "same_tokens": same, "renewlm_small": small_run, "stream_read": reads}
    (RESULTS / "prepare.json").write_text(json.dumps(out, indent=2))
    print(f"written: {RESULTS / 'prepare.json'}")


if __name__ == "__main__":
    main()
