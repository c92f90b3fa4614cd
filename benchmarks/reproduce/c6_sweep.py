"""Study 6 in the converged regime: a sweep that characterizes data by a target, and the mixture of best token counts.

Claim (Databricks Mosaic 2024, recipes.md §4): short proxy runs (an LR grid, then a duration sweep at the best LR)
find each data set's best token count for the target metric, and the helpful sets mixed in the ratio of their
best token counts beat the naive ways of using them.

The target is held-out English manual pages (`cv-man`'s held-out split). The candidates are built so that their
best durations differ, and so that we know which helps:
- large and helpful: `cv-man` itself (its training split, 4.5M tokens, about 280 steps a pass);
- small and helpful: `cv-man1`, the section-1 pages (user commands) of Debian's shell and everyday tools
  (`SECTION_ONE`), formatted as `cv-man` is (which has sections 2-8); a pass takes a few dozen steps, so a long
  run repeats it many times over and overfits;
- harmful: `cv-man1-shuffled`, `cv-man1`'s documents with their tokens shuffled within each document: the same
  vocabulary and counts, every order wrong.
`renewlm sweep c6-sweep --from cv-base --data cv-man,cv-man1,cv-man1-shuffled --target cv-man --replay 0.25`, LRs
0.25, 0.5 and 1 × the base's peak (100 steps each, one repeat seed), durations 25, 50, 100, 200 and 400 steps,
each with its 20% decay. Then, from `cv-base`, three mixtures of the corpora the sweep kept, each 400 steps (the
longest duration) at the best LR of the corpus with the largest share, replaying 25% of `cv-prose`, three
data-order seeds: `ratio` (the sweep's suggested mixture), `equal` (the kept corpora 1:1) and `concatenation`
(the kept corpora one after another, the one with the most best tokens last, the order kindest to the target).

Reproduced if the kept corpora's best token counts differ and `ratio`'s target loss is below both baselines' in
paired 95% intervals over the seeds (each upper end below 0). Fewer than two kept corpora leave no ratio to test.

    python benchmarks/reproduce/c6_sweep.py [--seeds 0 1 2]

Resumable: the sweep and every arm resume run by run. About 2,900 sweep steps and 3,600 arm steps at three seeds:
about 1.8 hours idle on 2 cores. Writes docs/results/c06_sweep.json.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ensure, heldout, say, write_jsonl  # noqa: E402
from corpora import MAN, PROSE, TOKENIZER, cached, debian, man_documents  # noqa: E402
from regime import BASE, REGIME, begin  # noqa: E402
from stats import difference, gap_cell, summary  # noqa: E402

from renewlm.data.prepare import prepare  # noqa: E402
from renewlm.data.tokenizer import load_tokenizer  # noqa: E402
from renewlm.store import Store  # noqa: E402
from renewlm.sweep import resolve_settings, run_sweep  # noqa: E402
from renewlm.train.config import validate_run  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402

STUDY = "c06_sweep"
SWEEP = "c6-sweep"
SMALL, SHUFFLED = "cv-man1", "cv-man1-shuffled"
CANDIDATES = [MAN, SMALL, SHUFFLED]
ROLE = {MAN: "large, helpful", SMALL: "small, helpful", SHUFFLED: "harmful"}
TARGET = MAN
# Debian packages whose section-1 pages make cv-man1: the shell and its everyday tools
SECTION_ONE = ("bash", "coreutils", "diffutils", "findutils", "grep", "manpages", "procps", "sed", "tar", "util-linux")
REPLAY = 0.25  # Ibrahim et al. 2024's share for a strong shift (cv-man is the strong one)
GRID_STEPS, DURATION_STEPS, LR_MULTIPLES = 100, (25, 50, 100, 200, 400), (0.25, 0.5, 1.0)
ARMS = ("ratio", "equal", "concatenation")


def section_one(store: Store) -> Path:
    """The section-1 manual pages of SECTION_ONE as JSON lines (downloaded by name and unpacked once)."""
    unpacked = debian(store.root / "sources", SECTION_ONE, "deb-man1")
    return cached(store.root / "sources" / "man1-utf8.jsonl", lambda: man_documents(unpacked / "usr/share/man", ("1",)))


def shuffled(store: Store, documents: list[str]) -> list[str]:
    """Each document with its tokens in a random order (seeded, so every store gets the same)."""
    tokenizer, rng, out = load_tokenizer(store, TOKENIZER), random.Random(0), []
    for doc in documents:
        ids = tokenizer(doc)["input_ids"]
        rng.shuffle(ids)
        out.append(tokenizer.decode(ids))
    return out


def build_corpora(store: Store) -> None:
    path = section_one(store)
    with tempfile.TemporaryDirectory() as tmp:
        for name, docs in ((SMALL, None), (SHUFFLED, lambda: shuffled(store, [json.loads(x)["text"] for x in path.read_text().splitlines()]))):
            if store.exists("corpora", name):
                continue
            source = path if docs is None else write_jsonl(Path(tmp) / f"{name}.jsonl", docs())
            corpus = prepare(store, name, [source], TOKENIZER, val_fraction=0.05, min_heldout_tokens=20_000)
            say(f"corpus {name}: {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")


def sweep(store: Store) -> dict:
    tokens = REGIME.batch_tokens
    settings = resolve_settings(store, SWEEP, {
        "parent": BASE, "data": CANDIDATES, "target": TARGET, "lrs": [m * REGIME.peak_lr for m in LR_MULTIPLES],
        "tokens": GRID_STEPS * tokens, "durations": [d * tokens for d in DURATION_STEPS], "replay": REPLAY, "seed_repeats": 1, "seed": 0,
    })
    return run_sweep(store, SWEEP, settings, say=say)


def arms(record: dict) -> dict[str, dict]:
    """The three mixtures of the kept corpora, in the format of a run file's `mixture:`."""
    kept = {c: e["best_tokens"] for c, e in record["corpora"].items() if e["in_mixture"]}
    replay = {"fraction": REPLAY, "corpora": {PROSE: 1.0}}
    order = sorted(kept, key=kept.get)  # the most best tokens last
    return {
        "ratio": record["suggested_mixture"],
        "equal": {"phases": [{"corpora": dict.fromkeys(kept, 1.0)}], "replay": replay},
        "concatenation": {"phases": [{"corpora": {c: 1.0}, "end": round((i + 1) / len(order), 6)} for i, c in enumerate(order)],
                          "replay": replay},
    }


def train_arm(store: Store, arm: str, mixture: dict, lr: float, seed: int) -> str:
    """`renewlm update`'s cosine re-warm and re-decay from the base at `lr`, with this mixture."""
    name = f"c6-{arm}-s{seed}"
    cfg = update_config(store, UpdateRequest(name=name, parent=BASE, data=[TARGET], lr=lr, steps=DURATION_STEPS[-1], seed=seed,
                                             **REGIME.run_shape()))
    ensure(store, validate_run({**cfg.model_dump(mode="json"), "mixture": mixture}, name))
    return name


def verdict(record: dict, target: dict[str, list[float]]) -> dict:
    kept = {c: e["best_tokens"] for c, e in record["corpora"].items() if e["in_mixture"]}
    gaps = {b: difference(target["ratio"], target[b], paired=True) for b in ("equal", "concatenation")}
    checks = {"best_tokens_differ": len(set(kept.values())) > 1 if len(kept) > 1 else None,
              **{f"ratio_beats_{b}": None if g["high"] is None else g["high"] < 0 for b, g in gaps.items()}}
    decided = None not in checks.values()
    return {"kept": kept, "ratio_minus": gaps, "checks": checks, "decided": decided, "reproduced": all(checks.values()) if decided else None}


def main() -> None:
    study = begin(STUDY, __doc__)
    store, args = study.store, study.args
    build_corpora(store)
    record = sweep(store)
    for corpus, e in record["corpora"].items():
        say(f"{corpus} ({ROLE[corpus]}): best LR {e['best_lr']:g}, best {e['best_tokens']:,} tokens, spread {e['spread']:.4f}; "
            f"{'kept' if e['in_mixture'] else 'left out'}: {e['reason']}")
    out = {"target": TARGET,
           "roles": ROLE, "sweep": {k: record[k] for k in ("settings", "corpora", "suggested_mixture", "cost", "target_losses")}}
    kept = [c for c, e in record["corpora"].items() if e["in_mixture"]]
    if len(kept) < 2:
        say(f"the sweep kept {len(kept)} corpus/corpora: no ratio to test, not decided")
        out["verdict"] = {"kept": kept, "decided": False, "reproduced": None, "why": "fewer than two corpora kept"}
    else:
        mixtures = arms(record)
        weights = mixtures["ratio"]["phases"][0]["corpora"]
        lr = record["corpora"][max(weights, key=weights.get)]["best_lr"]
        names = {a: [train_arm(store, a, mixtures[a], lr, s) for s in args.seeds] for a in ARMS}
        losses = heldout(store, [BASE, *(n for v in names.values() for n in v)], [TARGET, PROSE, *kept])
        target = {a: [losses[n][TARGET] for n in v] for a, v in names.items()}
        result = verdict(record, target)
        for a in ARMS:
            say(f"{a:>13}: target {summary(target[a])['mean']:.4f}" + ("" if a == "ratio" else f"; ratio − {a} {gap_cell(result['ratio_minus'][a], 4)}"))
        say(f"checks: {result['checks']}; " + ("decided" if result["decided"] else "not decided (one seed)"))
        out.update(mixtures=mixtures, lr=lr, arms={a: {"versions": names[a], "target": summary(target[a]),
                                                       "losses": {c: summary([losses[n][c] for n in names[a]]) for c in losses[BASE]}}
                                                   for a in ARMS}, base_losses=losses[BASE], verdict=result)
    study.write(out)


if __name__ == "__main__":
    main()
