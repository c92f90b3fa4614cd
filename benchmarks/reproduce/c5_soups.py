"""Study 5 in the converged regime: a soup of an update with its base (Databricks Mosaic 2024, recipes.md §4).

Claim: averaging the weights of a model after continued pre-training with its base's reduces forgetting and can
improve the target too. Here the update is long enough to forget: `cv-base` continued for one update's length
(regime.py: 600 steps) on the strong shift (the candidate with the larger measured gap) with the `cosine` recipe
and no replay. Its target is a distribution it did not train on but is meant to help: `cv-de`, German manual
pages, beside the English ones it trains on (the tokenizer never saw German). The old data is `cv-prose`.

Soups α·update + (1 − α)·base for α in 0, 0.1, …, 1 (α = 0 is the base, α = 1 the update), built in memory as
`renewlm soup --sweep` builds them. Each held-out split is cut in two: its first half of windows is the
validation part, where each seed's α is chosen (the lowest mean of old data and target, as the sweep chooses),
and its second half the test part, where everything is reported, so the choice never sees the numbers it is
scored on. Seeds vary the update's data order (the base is shared).

Reproduced if, in paired 95% intervals over the seeds, the chosen soup (α < 1 for every seed) is below the
update on both the old data and the target on the test windows: each interval's upper end below 0. With one
seed there are no intervals and the verdict is "not decided".

    python benchmarks/reproduce/c5_soups.py [--seeds 0 1 2]

Resumable: a finished update is never trained again (each about 12 minutes idle on 2 cores); the soups are
measured again on every call (about 170 s per seed: 11 soups on three corpora). Writes docs/results/c05_soups.json.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c1_replay import measured_shifts  # noqa: E402
from common import ensure, say  # noqa: E402
from corpora import GERMAN, PROSE  # noqa: E402
from regime import BASE, REGIME, begin  # noqa: E402
from stats import cell, difference, gap_cell, summary  # noqa: E402

from renewlm.data.corpus import Corpus  # noqa: E402
from renewlm.distributed import Dist  # noqa: E402
from renewlm.eval.heldout import heldout_loss  # noqa: E402
from renewlm.merge import methods  # noqa: E402
from renewlm.merge.search import build_model  # noqa: E402
from renewlm.merge.soup import Recipe, check_weights, load_into, open_parent  # noqa: E402
from renewlm.store import Store  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402

STUDY = "c05_soups"
ALPHAS = [round(0.1 * i, 1) for i in range(11)]
TARGET = GERMAN
PARTS = ("validation", "test")


@dataclass(frozen=True)
class Part:
    """Windows `first` … `first + count − 1` of a held-out split, read as a split of their own (eval/heldout.py
    evaluates a split's windows from its start, in order)."""

    split: object
    first: int
    count: int
    seq_len: int

    @property
    def num_tokens(self) -> int:
        return self.count * self.seq_len + 1  # the last window's next token is its last label

    def read(self, start: int, length: int):
        return self.split.read(self.first * self.seq_len + start, length)


def halves(split, seq_len: int) -> dict[str, Part]:
    """The split's windows cut in two: the first half to choose on, the second to report."""
    windows = (split.num_tokens - 1) // seq_len
    return {"validation": Part(split, 0, windows // 2, seq_len), "test": Part(split, windows // 2, windows - windows // 2, seq_len)}


def update_name(seed: int) -> str:
    return f"c5-update-s{seed}"


def train_update(store: Store, corpus: str, seed: int) -> str:
    name = update_name(seed)
    ensure(store, update_config(store, UpdateRequest(name=name, parent=BASE, data=[corpus], replay=0.0, recipe="cosine",
                                                     steps=REGIME.update_steps, seed=seed, **REGIME.run_shape())))
    return name


def sweep(store: Store, update: str, corpora: list[str]) -> dict[float, dict[str, dict[str, float]]]:
    """{α: {part: {corpus: held-out loss}}} of every soup of `update` with the base."""
    linear = methods.method(methods.LINEAR)
    parents = [open_parent(store, update), open_parent(store, BASE)]
    model = build_model(parents[0])
    dist_ = Dist.single(next(model.parameters()).device)
    splits = {c: halves(Corpus.open(store, c).val, REGIME.seq_len) for c in corpora}
    micro_batch = REGIME.run_shape()["micro_batch"]
    out = {}
    for alpha in ALPHAS:
        load_into(model, Recipe(parents, linear, BASE, check_weights(linear, [update], BASE, [alpha], sweep=True), {}))
        out[alpha] = {part: {c: heldout_loss(model, splits[c][part], seq_len=REGIME.seq_len, max_tokens=splits[c][part].num_tokens,
                                             micro_batch=micro_batch, dist_=dist_) for c in corpora} for part in PARTS}
    return out


def chosen(rows: dict[float, dict]) -> float:
    """The α with the lowest mean of old data and target on the validation windows (the smaller α on a tie)."""
    return min(ALPHAS, key=lambda a: ((rows[a]["validation"][PROSE] + rows[a]["validation"][TARGET]) / 2, a))


def verdict(by_seed: dict[int, dict], picks: dict[int, float]) -> dict:
    """The chosen soup against the update on the test windows, paired by seed, on the old data and on the target."""
    seeds = list(by_seed)
    gaps = {c: difference([by_seed[s][picks[s]]["test"][c] for s in seeds], [by_seed[s][1.0]["test"][c] for s in seeds], paired=True)
            for c in (PROSE, TARGET)}
    checks = {"alpha_below_one": all(picks[s] < 1.0 for s in seeds),
              **{f"beats_update_on_{c}": None if g["high"] is None else g["high"] < 0 for c, g in gaps.items()}}
    decided = None not in checks.values()
    return {"soup_minus_update": gaps, "checks": checks, "decided": decided, "reproduced": all(checks.values()) if decided else None}


def main() -> None:
    study = begin(STUDY, __doc__)
    store, args = study.store, study.args
    corpus = measured_shifts(store)["strong"]
    corpora = [PROSE, corpus, TARGET]
    by_seed = {}
    for seed in args.seeds:
        update = train_update(store, corpus, seed)
        begun = time.perf_counter()
        by_seed[seed] = sweep(store, update, corpora)
        say(f"  {update}: {len(ALPHAS)} soups measured in {time.perf_counter() - begun:.0f} s")
    picks = {s: chosen(rows) for s, rows in by_seed.items()}
    table = [{"alpha": a, "test": {c: summary([by_seed[s][a]["test"][c] for s in args.seeds]) for c in corpora}} for a in ALPHAS]
    say(f"test windows, mean ± sd over seeds {args.seeds}: α, {', '.join(corpora)}")
    for row in table:
        say(f"{row['alpha']:>4.1f}  " + "  ".join(cell(row["test"][c], 4) for c in corpora))
    say("chosen on the validation windows: " + ", ".join(f"seed {s}: α = {a:g}" for s, a in picks.items()))
    result = verdict(by_seed, picks)
    for c, g in result["soup_minus_update"].items():
        say(f"chosen soup − update on {c}: {gap_cell(g, 4)}")
    say(f"checks: {result['checks']}; " + ("decided" if result["decided"] else "not decided (one seed)"))
    study.write({
        "update_corpus": corpus, "old": PROSE, "target": TARGET, "alphas": ALPHAS, "steps": REGIME.update_steps,
        "windows": {c: {part: h.count for part, h in halves(Corpus.open(store, c).val, REGIME.seq_len).items()} for c in corpora},
        "losses": {str(s): {str(a): rows[a] for a in ALPHAS} for s, rows in by_seed.items()}, "chosen": {str(s): a for s, a in picks.items()},
        "table": table, "verdict": result, "updates": {update_name(s): read_version(store, update_name(s)).seconds for s in args.seeds},
    })


if __name__ == "__main__":
    main()
