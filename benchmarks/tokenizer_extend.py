"""`renewlm tokenizer extend` on a language its base never saw, and what growing a model costs on old text.

1. A byte-level BPE base (default 8,192 ids) trained on English: the Python reference's topics
   (pydoc_data) and the standard library's code, both in every Python install.
2. New language: the Russian translations every Debian/Ubuntu system ships in
   /usr/share/locale/ru/LC_MESSAGES/*.mo (read with gettext), 90% to learn from, every tenth held out.
3. For each --add: seconds taken, characters per token on the held-out Russian before and after, and on
   the English, how many texts tokenize exactly as before and the change in tokens.
4. A tiny preset model trained on the English prose (--steps), grown by the largest --add: its held-out
   loss on that prose before and after the growth (the softmax's normaliser gains the new rows), beside
   the bound log(1 + k/V).

    python benchmarks/tokenizer_extend.py --add 1000 4000 --steps 300

Prints tables and writes benchmarks/results/tokenizer_extend.json.
"""

from __future__ import annotations

import argparse
import gettext
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ holds the shared English texts
RESULTS = Path(__file__).parent / "results"


def russian_texts(folder: Path) -> list[str]:
    texts = []
    for path in sorted(folder.glob("*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        texts += [v for k, v in catalog.items() if isinstance(v, str) and v.strip() and v != k and k]
    return texts


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def tokens(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--add", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--steps", type=int, default=300, help="training steps of the tiny model (0: skip part 4)")
    parser.add_argument("--locale", type=Path, default=Path("/usr/share/locale/ru/LC_MESSAGES"))
    args = parser.parse_args()

    from renewlm.data.tokenizer import load_tokenizer, train_tokenizer
    from renewlm.data.tokenizer_extend import extend_tokenizer
    from renewlm.store import Store
    from tests.conftest import prose_texts
    from tests.train.conftest import code_texts

    russian = russian_texts(args.locale)
    if not russian:
        sys.exit(f"no translations found in {args.locale}; pass --locale a folder of .mo files")
    learn, held = [t for i, t in enumerate(russian) if i % 10], russian[::10]
    english = prose_texts() + code_texts()
    tmp = Path(tempfile.mkdtemp(prefix="renewlm-extend-"))
    store = Store(tmp / "store")
    train_tokenizer(store, "base", [write_jsonl(tmp / "en.jsonl", english)], args.vocab_size)
    base = load_tokenizer(store, "base")
    ru = write_jsonl(tmp / "ru.jsonl", learn)
    held_chars, base_held = sum(map(len, held)), tokens(base, held)
    base_english = tokens(base, english)
    print(f"new language: {len(learn):,} texts ({sum(map(len, learn)) / 1e6:.2f} M characters) to learn from, "
          f"{len(held):,} ({held_chars / 1e6:.2f} M) held out; base: {len(base):,} ids on {len(english):,} English texts")
    print(f"{'add':>6} {'seconds':>8} {'ru chars/token':>15} {'ru tokens':>10} {'en same':>8} {'en tokens':>10}")
    print(f"{0:>6} {'':>8} {held_chars / sum(map(len, base_held)):>15.3f} {'':>10} {'':>8} {'':>10}")
    rows = []
    for add in args.add:
        started = time.perf_counter()
        done = extend_tokenizer(store, f"ext-{add}", "base", [ru], add)
        seconds = time.perf_counter() - started
        ext = load_tokenizer(store, f"ext-{add}")
        ext_held, ext_english = tokens(ext, held), tokens(ext, english)
        row = {
            "add": add, "tokens_added": done["tokens"], "seconds": seconds, "words": done["words"],
            "ru_chars_per_token": [held_chars / sum(map(len, base_held)), held_chars / sum(map(len, ext_held))],
            "ru_token_change": sum(map(len, ext_held)) / sum(map(len, base_held)) - 1,
            "en_same_fraction": sum(a == b for a, b in zip(base_english, ext_english)) / len(english),
            "en_token_change": sum(map(len, ext_english)) / sum(map(len, base_english)) - 1,
        }
        rows.append(row)
        print(f"{add:>6} {seconds:>8.1f} {row['ru_chars_per_token'][1]:>15.3f} {row['ru_token_change']:>+10.1%} "
              f"{row['en_same_fraction']:>8.1%} {row['en_token_change']:>+10.2%}")
    out = {"vocab_size": args.vocab_size, "learn_texts": len(learn), "held_texts": len(held), "extend": rows}
    if args.steps:
        out["growth"] = growth(store, tmp, max(args.add), args.steps)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tokenizer_extend.json").write_text(json.dumps(out, indent=2) + "\n")


def growth(store, tmp: Path, add: int, steps: int) -> dict:
    """Held-out loss on the base's own prose before and after growing a trained tiny model by `add` rows."""
    import torch
    from transformers import AutoModelForCausalLM

    from renewlm.data.corpus import Corpus
    from renewlm.data.prepare import prepare
    from renewlm.distributed import Dist
    from renewlm.eval.heldout import heldout_loss
    from renewlm.model.resize import grow_vocabulary
    from renewlm.train.config import validate_run
    from renewlm.train.loop import train
    from tests.conftest import prose_texts

    prepare(store, "prose", [write_jsonl(tmp / "prose.jsonl", prose_texts())], "base", val_fraction=0.1)
    run = {"name": "base-model", "preset": "tiny", "tokenizer": "base", "mixture": {"phases": [{"corpora": {"prose": 1.0}}]},
           "schedule": {"name": "cosine", "peak_lr": 3e-3}, "seq_len": 128, "batch_tokens": 128 * 16, "micro_batch": 8,
           "steps": steps, "eval_tokens": 16384, "seed": 0}
    train(validate_run(run), store, fresh=True)
    model = AutoModelForCausalLM.from_pretrained(store.path("versions", "base-model")).eval()
    split = Corpus.open(store, "prose").val
    options = {"seq_len": 128, "max_tokens": 16384, "micro_batch": 8, "dist_": Dist.single(torch.device("cpu"))}
    before = heldout_loss(model, split, **options)
    rows = model.get_input_embeddings().weight.shape[0]
    grow_vocabulary(model, rows + add, rows)
    after = heldout_loss(model, split, **options)
    result = {"steps": steps, "old_ids": rows, "added": add, "loss_before": before, "loss_after": after,
              "rise": after - before, "bound": math.log1p(add / rows)}
    print(f"tiny model, {steps} steps on prose: held-out loss {before:.4f} -> {after:.4f} after growing {rows:,} -> "
          f"{rows + add:,} ids (+{after - before:.4f} nats; bound log(1 + k/V) = {result['bound']:.4f})")
    return result


if __name__ == "__main__":
    main()
