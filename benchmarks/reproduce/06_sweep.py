"""Study 6: sweep and characterization (Databricks Mosaic, 2024; recipes.md §4; docs/sweeps.md).

Question: do short proxy runs (an LR grid, then a duration sweep at the best LR) tell a helpful data
set from a neutral and a harmful one, and does the mixture they suggest (helpful corpora in the ratio
of their best token counts) beat the naive ways of using all the data with the same tokens?

`renewlm sweep s6-sweep --from rp-a` (`renewlm.sweep.run_sweep`, as the CLI calls it) over three
candidates built so that we know the answer beforehand. The target is held-out Python source of
modules none of the candidates contains (`s6-target`; only its held-out split is ever read):
- helpful, `rp-code`: more Python source, other modules: the target's language, layout and idioms;
- neutral, `rp-prose-b`: English prose about internet, e-mail and concurrency modules: unrelated to the
  target, and close to what rp-a already knows (prose A), so it should move neither much;
- harmful, `s6-shuffled`: rp-code's own documents with their tokens shuffled within each document: the
  same vocabulary and token counts as the helpful corpus, with every order statistic wrong (what
  follows `def`, indentation after `:`), so what it teaches contradicts the target's conditionals.
All runs replay 25% of prose A (Ibrahim et al.'s figure for a strong shift). Then the suggested
mixture is trained against a 1:1:1 mixture of the candidates and their concatenation (each candidate
in turn, one phase each), from rp-a with the same tokens, LR and replay, over two seeds.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BASE,
    CODE,
    PROSE_A,
    PROSE_B,
    TOKENIZER,
    arguments,
    base,
    ensure,
    figure_path, save_figure,
    heldout,
    mean_spread,
    say,
    write_jsonl,
    write_results,
)

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import load_tokenizer
from renewlm.examples.demo import code_documents, stdlib_files
from renewlm.sweep import resolve_settings, run_sweep
from renewlm.train.config import validate_run
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config

STUDY = "s06_sweep"
SWEEP = "s6-sweep"
TARGET, SHUFFLED = "s6-target", "s6-shuffled"
HELPFUL, NEUTRAL, HARMFUL = CODE, PROSE_B, SHUFFLED
CANDIDATES = [HELPFUL, NEUTRAL, HARMFUL]
ROLE = {HELPFUL: "helpful", NEUTRAL: "neutral", HARMFUL: "harmful"}
REPLAY = 0.25  # Ibrahim et al. 2024: 25% replay for a strong shift (prose -> code)
LR_MULTIPLES = (0.5, 1.0, 2.0)  # × the size's pre-training peak: a grid around where rp-a was trained
TARGET_CHARS = 400_000  # about 100k tokens: half of it held out, above the 40k-token windows of an eval


# --- data -------------------------------------------------------------------------------------------------


def target_documents(files: list[Path], code_bytes: int) -> list[str]:
    """Source of the last modules in path order whose code is not in rp-code, up to TARGET_CHARS."""
    helpful = set(code_documents(files, code_bytes))
    docs, used = [], 0
    for path in reversed(files):
        pieces = code_documents([path], 10**9)
        if not pieces or helpful.intersection(pieces):
            continue
        docs = pieces + docs
        used += sum(map(len, pieces))
        if used >= TARGET_CHARS:
            break
    return docs


def shuffled_documents(store, files: list[Path], code_bytes: int) -> list[str]:
    """rp-code's documents, each with its `rp` tokens in a random order (seeded, so every store is the same)."""
    tokenizer = load_tokenizer(store, TOKENIZER)
    rng = random.Random(0)
    out = []
    for doc in code_documents(files, code_bytes):
        ids = tokenizer(doc)["input_ids"]
        rng.shuffle(ids)
        out.append(tokenizer.decode(ids))
    return out


def build_corpora(store, size) -> None:
    """s6-target and s6-shuffled, once per store (rp-code and rp-prose-b are the shared corpora)."""
    files = stdlib_files()
    with tempfile.TemporaryDirectory() as tmp:
        for name, docs, val in ((TARGET, lambda: target_documents(files, size.code_bytes), 0.5),
                                (SHUFFLED, lambda: shuffled_documents(store, files, size.code_bytes), 0.05)):
            if store.exists("corpora", name):
                continue
            path = write_jsonl(Path(tmp) / f"{name}.jsonl", docs())
            corpus = prepare(store, name, [path], TOKENIZER, val_fraction=val, min_heldout_tokens=40_000, overwrite=True)
            say(f"corpus {name}: {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")


# --- the sweep --------------------------------------------------------------------------------------------


def sweep_settings(size) -> dict:
    """A small sweep: 3 LRs of grid_steps each, durations of ½, 1 and 2 × grid_steps, one repeat seed."""
    grid = size.update_steps * 2 // 5  # 40 steps at tiny
    return {
        "parent": BASE, "data": CANDIDATES, "lrs": [m * size.peak_lr for m in LR_MULTIPLES],
        "tokens": grid * size.batch_tokens, "durations": [d * grid * size.batch_tokens // 2 for d in (1, 2, 4)],
        "replay": REPLAY, "seed_repeats": 1, "seed": 0,
    }


def sweep(store, size) -> dict:
    """`renewlm sweep s6-sweep --from rp-a --data ... --lrs ... --tokens ... --durations ... --replay 0.25`."""
    settings = resolve_settings(store, SWEEP, sweep_settings(size))
    return run_sweep(store, SWEEP, settings, say=say)


def target_column(store, record: dict) -> dict[str, dict]:
    """What the sweep does not measure: each candidate's best point against rp-a on the target, with the
    spread over the best LR's point and its repeat, as the sweep measures its own evaluations."""
    out, versions = {}, [BASE]
    for corpus, e in record["corpora"].items():
        noise = [next(x["version"] for x in e["lrs"] if x["lr"] == e["best_lr"]), *(r["version"] for r in e["repeats"])]
        best = next(d["version"] for d in e["durations"] if d["tokens"] == e["best_tokens"])
        out[corpus] = {"noise": noise, "best": best}
        versions += [*noise, best]
    losses = heldout(store, list(dict.fromkeys(versions)), [TARGET])
    for corpus, v in out.items():
        values = [losses[n][TARGET] for n in v["noise"]]
        delta = losses[v["best"]][TARGET] - losses[BASE][TARGET]
        spread = max(values) - min(values)
        verdict = "unchanged" if abs(delta) <= spread else ("helps" if delta < 0 else "hurts")
        v.update(parent=losses[BASE][TARGET], value=losses[v["best"]][TARGET], delta=delta, spread=spread, verdict=verdict)
    return out


# --- the headline: suggested mixture vs 1:1:1 vs concatenation --------------------------------------------


def arms(record: dict) -> dict[str, dict]:
    """The three mixtures, in the format of a run file's `mixture:`. Concatenation is the candidates one
    after another, harmful first and helpful last: the order kindest to it on the target (recency)."""
    suggested = record["suggested_mixture"]
    replay = {"fraction": REPLAY, "corpora": {PROSE_A: 1.0}}
    order = [HARMFUL, NEUTRAL, HELPFUL]
    concat = [{"corpora": {c: 1.0}, "end": round((i + 1) / len(order), 6)} for i, c in enumerate(order)]
    return {
        "suggested": suggested,
        "equal": {"phases": [{"corpora": dict.fromkeys(CANDIDATES, 1.0)}], "replay": replay},
        "concatenation": {"phases": concat, "replay": replay},
    }


def headline_lr(record: dict) -> float:
    """The best LR of the corpus with the largest share of the suggested mixture (used by every arm)."""
    weights = record["suggested_mixture"]["phases"][0]["corpora"]
    return record["corpora"][max(weights, key=weights.get)]["best_lr"]


def headline_steps(size) -> int:
    """Every arm trains as long as the sweep's longest duration."""
    return max(sweep_settings(size)["durations"]) // size.batch_tokens


def train_arm(store, size, arm: str, mixture: dict, lr: float, seed: int) -> str:
    """A run file from rp-a: `renewlm update`'s cosine re-warm + re-decay at `lr`, with this mixture."""
    name = f"s6-{arm}-s{seed}"
    cfg = update_config(store, UpdateRequest(name=name, parent=BASE, data=[HELPFUL], lr=lr, steps=headline_steps(size),
                                             seed=seed, **size.run_shape()))
    ensure(store, validate_run({**cfg.model_dump(mode="json"), "mixture": mixture}, name))
    return name


# --- output -----------------------------------------------------------------------------------------------


def print_characterization(record: dict, target: dict) -> None:
    say("\ncharacterization: the best point (best LR, best tokens) against rp-a; ± the spread over data-order seeds")
    say(f"{'candidate':<12}{'role':<9}{'best LR':>9}{'best tokens':>13}{'own':>16}{'prose A':>16}{'target':>16}  mixture")
    for corpus, e in record["corpora"].items():
        c = e["characterization"]
        own, lineage = c[f"heldout/{corpus}"], c[f"heldout/{PROSE_A}"]
        cells = [f"{x['delta']:+.3f} {x['verdict'][:5]}" for x in (own, lineage, target[corpus])]
        say(f"{corpus:<12}{ROLE[corpus]:<9}{e['best_lr']:>9g}{e['best_tokens']:>13,}{cells[0]:>16}{cells[1]:>16}{cells[2]:>16}"
            f"  {'yes' if e['in_mixture'] else 'no'}: {e['reason']}")
    say(f"suggested mixture: {record['suggested_mixture']}")


def print_headline(table: dict[str, dict]) -> None:
    say("\nsame tokens from rp-a, held-out loss (mean ± half the range over seeds)")
    corpora = list(next(iter(table.values())))
    say(f"{'arm':<15}" + "".join(f"{c:>20}" for c in corpora))
    for arm, row in table.items():
        say(f"{arm:<15}" + "".join(f"{row[c]['mean']:>12.3f} ±{row[c]['spread']:.3f} " for c in corpora))


def plot(record: dict, table: dict[str, dict], base_losses: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.6), dpi=110)
    for corpus, e in record["corpora"].items():
        label = f"{corpus} ({ROLE[corpus]})"
        (line,) = a.plot([x["lr"] for x in e["lrs"]], [x["loss"] - base_losses[corpus] for x in e["lrs"]], marker="o", label=label)
        b.plot([d["tokens"] for d in e["durations"]], [d["loss"] - base_losses[corpus] for d in e["durations"]], marker="o",
               color=line.get_color(), label=f"{label}, LR {e['best_lr']:g}")
        b.axvline(e["best_tokens"], color=line.get_color(), ls=":", alpha=0.6)
    a.set(xscale="log", xlabel="peak LR", ylabel="held-out loss on the corpus itself − rp-a's", title="stage 1: LR grid")
    b.set(xlabel="duration in tokens (each + a 20% 1-sqrt decay)", ylabel="held-out loss on the corpus itself − rp-a's",
          title="stage 2: durations at the best LR (dotted: best tokens)")
    arms_ = list(table)
    width = 0.38
    for k, (corpus, label) in enumerate(((TARGET, "target (held-out code)"), (PROSE_A, "prose A (forgetting)"))):
        xs = [i + (k - 0.5) * width for i in range(len(arms_))]
        c.bar(xs, [table[arm][corpus]["mean"] - base_losses[corpus] for arm in arms_], width,
              yerr=[table[arm][corpus]["spread"] for arm in arms_], capsize=3, label=label)
    c.axhline(0, color="black", lw=0.8)
    c.set_xticks(range(len(arms_)), arms_)
    c.set(ylabel="held-out loss − rp-a's", title="same tokens from rp-a (± spread over seeds)")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.splitlines()[0])
    store, size = args.store, args.size
    base(store, size)
    build_corpora(store, size)
    record = sweep(store, size)
    target = target_column(store, record)
    print_characterization(record, target)
    if record["suggested_mixture"] is None:
        raise SystemExit("the sweep suggested no mixture, so there is no headline comparison to run")
    mixtures, lr = arms(record), headline_lr(record)
    say(f"\nheadline: {headline_steps(size)} steps at LR {lr:g} from {BASE}, seeds {args.seeds}")
    runs = {arm: [train_arm(store, size, arm, mixture, lr, seed) for seed in args.seeds] for arm, mixture in mixtures.items()}
    corpora = [TARGET, PROSE_A, *CANDIDATES]
    losses = heldout(store, [BASE, *(v for vs in runs.values() for v in vs)], corpora)
    table = {arm: {c: mean_spread([losses[v][c] for v in vs]) for c in corpora} for arm, vs in runs.items()}
    print_headline(table)
    plot(record, table, losses[BASE], figure_path(STUDY))
    write_results(STUDY, args, {
        "sweep": {k: record[k] for k in ("settings", "corpora", "suggested_mixture", "cost")},
        "roles": ROLE, "target": TARGET, "target_characterization": target,
        "headline": {"lr": lr, "steps": headline_steps(size), "mixtures": mixtures, "runs": runs,
                     "base": losses[BASE], "table": table},
    }, started)


if __name__ == "__main__":
    main()
