"""A new language with and without extending the tokenizer, after the same compute, in the converged regime.

The base (regime.py's `cv-base`) and its 4,096-id tokenizer `cv` saw no German. The German manual pages
(corpora.py's source for `cv-de`) are split once by document hash: 2% held out, the rest to learn from. Then:

1. `renewlm tokenizer extend cv-dex --from cv --add N` on the German training documents only (continued BPE;
   every old text keeps its ids): characters per token on the held-out German before and after
   (goal: at least 15% fewer tokens).
2. The German prepared twice from the same file and split (`cv-de2` with `cv`, `cv-de2x` with `cv-dex`, both
   with the 2% hash split alone, so their held-out documents are the same texts).
3. Two updates from the base of the same steps and tokens per step, the `cosine` recipe: `x-de-old` on
   `cv-de2`, and `x-de-ext` on `cv-de2x` with `tokenizer: cv-dex` (the model grows by N rows, each starting at
   the mean of the old rows).
4. Bits per byte on the held-out German and on the base's data (`cv-prose`, read on its old ids by both) for
   the base and the two updates: per byte, versions with different tokenizers compare.

    python benchmarks/reproduce/vocab_extension.py [--add 1024] [--steps 300]

Resumable. Writes docs/results/vocab_extension.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, ensure, machine, say  # noqa: E402
from corpora import PROSE, TOKENIZER  # noqa: E402
from regime import BASE, REGIME, default_store, require_converged  # noqa: E402

from renewlm.data.prepare import is_heldout, prepare  # noqa: E402
from renewlm.data.tokenizer import load_tokenizer  # noqa: E402
from renewlm.data.tokenizer_extend import extend_tokenizer  # noqa: E402
from renewlm.eval.compare import check, evaluate_versions  # noqa: E402
from renewlm.store import Store, write_json  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402

EXTENDED = "cv-dex"
OLD_CORPUS, NEW_CORPUS = "cv-de2", "cv-de2x"
HELDOUT = 0.02


def split_german(store: Store) -> tuple[Path, list[str]]:
    """The German source's training documents as a file of their own, and its held-out texts."""
    source = store.root / "sources" / "de-utf8.jsonl"
    texts = [json.loads(line)["text"] for line in source.read_text().splitlines()]
    train = store.root / "sources" / "de-utf8-train.jsonl"
    if not train.is_file():
        partial = train.with_suffix(".partial")
        partial.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts if not is_heldout(t, HELDOUT)))
        partial.rename(train)
    return train, [t for t in texts if is_heldout(t, HELDOUT)]


def per_byte(store: Store, versions: list[str], corpora: list[str]) -> dict:
    """Held-out loss and bits per byte of each version on each corpus it can read (renewlm eval's numbers)."""
    result = evaluate_versions(store, check(store, versions, corpora=corpora))["versions"]
    return {v: {c: {k: e[k] for k in ("loss", "bits_per_byte", "bytes_per_token")} for c, e in result[v]["heldout"].items()}
            for v in versions}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--add", type=int, default=1024, help="new tokens the extension learns")
    p.add_argument("--steps", type=int, default=300, help="steps of each update (16,384 tokens each)")
    args = p.parse_args()
    started = time.perf_counter()
    store = default_store()
    convergence = require_converged(store)
    train, heldout_texts = split_german(store)
    earlier = RESULTS / "vocab_extension.json"  # a rerun reuses the extension: its time is the earlier record's
    extension_seconds = json.loads(earlier.read_text()).get("extension_seconds") if earlier.is_file() else None
    if not store.exists("tokenizers", EXTENDED):
        t0 = time.perf_counter()
        added = extend_tokenizer(store, EXTENDED, TOKENIZER, [train], args.add)
        extension_seconds = round(time.perf_counter() - t0, 1)
        say(f"{EXTENDED}: {added['tokens']:,} tokens added in {extension_seconds} s")
    old_tok, new_tok = load_tokenizer(store, TOKENIZER), load_tokenizer(store, EXTENDED)
    chars = sum(len(t) for t in heldout_texts)
    counts = {name: sum(len(ids) for ids in tok(heldout_texts, add_special_tokens=False)["input_ids"])
              for name, tok in ((TOKENIZER, old_tok), (EXTENDED, new_tok))}
    fewer = 1 - counts[EXTENDED] / counts[TOKENIZER]
    say(f"held-out German ({len(heldout_texts):,} documents, {chars:,} characters): {chars / counts[TOKENIZER]:.3f} "
        f"characters per token with {TOKENIZER}, {chars / counts[EXTENDED]:.3f} with {EXTENDED} ({fewer:.1%} fewer tokens)")
    for corpus, tokenizer in ((OLD_CORPUS, TOKENIZER), (NEW_CORPUS, EXTENDED)):
        if not store.exists("corpora", corpus):
            prepare(store, corpus, [train.parent / "de-utf8.jsonl"], tokenizer, val_fraction=HELDOUT)
    runs = {"x-de-old": (OLD_CORPUS, None), "x-de-ext": (NEW_CORPUS, EXTENDED)}
    for name, (corpus, tokenizer) in runs.items():
        ensure(store, update_config(store, UpdateRequest(
            name=f"{name}-{args.steps}", parent=BASE, data=[corpus], tokenizer=tokenizer, recipe="cosine",
            steps=args.steps, seed=0, **REGIME.run_shape(),
        )))
    old, ext = f"x-de-old-{args.steps}", f"x-de-ext-{args.steps}"
    measured = {**per_byte(store, [BASE, old], [PROSE, OLD_CORPUS]), **per_byte(store, [ext], [PROSE, NEW_CORPUS])}
    rows = {}
    for version, corpus in ((BASE, OLD_CORPUS), (old, OLD_CORPUS), (ext, NEW_CORPUS)):
        record = read_version(store, version)
        rows[version] = {"german": measured[version][corpus], "prose": measured[version][PROSE],
                         "flops": record.flops if version != BASE else None, "tokens": record.tokens if version != BASE else None}
        say(f"{version:>14}: German {rows[version]['german']['bits_per_byte']:.4f} bits/byte "
            f"({rows[version]['german']['bytes_per_token']:.2f} bytes/token), prose {rows[version]['prose']['bits_per_byte']:.4f} "
            f"bits/byte (loss {rows[version]['prose']['loss']:.4f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "study": "vocab_extension", "base": BASE, "regime": REGIME.__dict__, "convergence": convergence,
        "add": args.add, "extension_seconds": extension_seconds, "steps": args.steps, "heldout_documents": len(heldout_texts), "heldout_characters": chars,
        "heldout_tokens": counts, "fewer_tokens": fewer, "goal_fewer_tokens_met": fewer >= 0.15, "versions": rows,
        "machine": machine(), "wall_seconds": round(time.perf_counter() - started, 1), "load_average_end": os.getloadavg(),
    }
    path = RESULTS / "vocab_extension.json"
    write_json(path, out)
    say(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
