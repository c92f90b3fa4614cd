"""Peak memory of `renewlm soup` against the number of versions merged.

Makes versions of one Llama shape (default ~70 MB of fp32 weights each), then in a fresh process per
row: the peak RSS of importing renewlm and loading one version with transformers (the yardstick:
one model in memory), and of a linear soup of 2, 4 and 8 versions. A soup streams tensor by tensor,
so its peak should stay near the import baseline plus a few tensors, whatever the number of inputs.

    python benchmarks/soup_memory.py                      # ~70 MB models
    python benchmarks/soup_memory.py --hidden 1024 --layers 8

Prints a table and writes benchmarks/results/soup_memory.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def make_store(root: Path, count: int, hidden: int, layers: int, vocab: int) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from renewlm.data.tokenizer import load_tokenizer, train_tokenizer
    from renewlm.store import Store
    from renewlm.versions import write_version

    store = Store(root / "store")
    text = root / "text.jsonl"
    text.write_text("".join(json.dumps({"text": f"sample text number {i} for a small tokenizer"}) + "\n" for i in range(200)))
    train_tokenizer(store, "tok", [text], 300)
    tok = load_tokenizer(store, "tok")
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
                         num_attention_heads=max(1, hidden // 64), tie_word_embeddings=False)
    for i in range(count):
        torch.manual_seed(i)
        write_version(store, f"v{i}", LlamaForCausalLM(config), tok, {})
    return store.root


def reset_peak() -> None:
    # Linux ≥ 4.0: writing 5 resets VmHWM, so the peak measured is the command's, not the imports'
    Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(store_root: str, what: str) -> None:
    # everything a soup imports is part of the baseline, so the peak above it is the soup's own
    from renewlm.merge import make_soup, search  # noqa: F401
    from renewlm.model import load  # noqa: F401
    from renewlm.store import Store
    from renewlm.versions import load_version

    store = Store(store_root)
    reset_peak()
    baseline = peak_mb()
    if what == "load":
        load_version(store, "v0")
    elif what != "import":
        n = int(what)
        make_soup(store, f"soup{n}", [f"v{i}" for i in range(n)])
    print(json.dumps({"baseline_mb": baseline, "peak_mb": peak_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--inputs", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_store(Path(tmp), max(args.inputs), args.hidden, args.layers, args.vocab)
        model_mb = (root / "versions" / "v0" / "model.safetensors").stat().st_size / 2**20
        rows = []
        for what in ["load", *map(str, args.inputs)]:
            out = subprocess.run([sys.executable, __file__, "--child", str(root), what], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            label = "load one version (transformers)" if what == "load" else f"linear soup of {what}"
            rows.append({"what": label, **row, "above_import_mb": row["peak_mb"] - row["baseline_mb"]})
    print(f"model: hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}: {model_mb:.1f} MB of weights per version")
    print(f"{'':34} {'peak RSS MB':>12} {'above imports':>14}")
    for r in rows:
        print(f"{r['what']:34} {r['peak_mb']:12.1f} {r['above_import_mb']:14.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soup_memory.json").write_text(json.dumps({"model_mb": model_mb, "args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
