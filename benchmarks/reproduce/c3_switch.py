"""Study 3 in the converged regime: path switching against retraining and continuing (Wang et al. 2024).

Claim (Wang et al. 2024, arXiv 2410.04103; recipes.md §3): over a series of data releases, path switching (a main
path kept at the peak LR, each release a short complete decay branched off it) comes as close to retraining from
scratch on all data so far as makes no difference, at a fraction of the cost (58% over four releases of equal
increments), while continuing from the last release falls further behind with every release.

Releases: a large first one and three smaller ones after. Release 1 is the regime's pre-training on `cv-prose`
(4,200 steps) as a run file with `paradigm: switch`: the main path `c3-r1-trunk` (wsd that never decays: 1% warmup,
then the peak 2e-3 held) and the release `c3-r1` branched off it, a 1-sqrt decay to 0 over 10% of its steps. It is
trained once and is release 1 of every paradigm (a retrain of release 1 is that same run), and it gets the
regime's convergence check itself. Releases 2, 3 and 4 each add one corpus of INCREMENT steps of new data: the
weak shift, the strong one (regime.py's shift table, named by their measured gap) and `cv-de`. Per release:
- switch: `renewlm update --paradigm switch` from the last release: the main path continues (weights and AdamW
  state, the peak held) for INCREMENT/(1 − 5%) steps with 5% replay of the earlier releases, and the release
  decays off it over 10% of those (the default decay fraction);
- continue: `renewlm update` (cosine re-warm and re-decay to 0.1·peak) from the last release, the same steps
  and replay;
- retrain: `renewlm update --paradigm retrain` (random weights, the seed's; every corpus so far for as many tokens
  as it gave the series as new data: release 1's main path, then INCREMENT steps of each) with the releases'
  schedule family instead of its default cosine: wsd, 1% warmup, the peak held, a 1-sqrt decay to 0 over the
  last 10%. Each release's retrain continues the
  series from the one before (PTFS), so the ledger counts every one of them;
- and beside it at release 4, for the first seed, the retrain as `--paradigm retrain` makes it (cosine to 0.1·peak).
Score: the mean held-out loss over every corpus released so far. Cost: each release's series FLOPs from the
ledger (`renewlm versions`: every run the series trained, retrains included), and `renewlm plan`'s for the same
series (`--pretrain-tokens` release 1's). Seeds vary the updates' data order and the retrains' initialisation;
release 1 is shared.

Reproduced if, in paired 95% intervals over the seeds, switch − retrain at release 4 lies inside
±max(0.02, 1% of the loss, the retrain's standard deviation over the seeds), switch's series costs at most 60%
of the retrain series' FLOPs, and continue's gap to retrain grows at every release (release 2's gap and each
later growth above 0). The paper's 58% is for four releases of equal increments, 2(1 + A)/(N + 1) of
retraining at decay fraction A = 0.45 in the cost model; with a large first release the share is far smaller.

    python benchmarks/reproduce/c3_switch.py [--seeds 0 1 2]

Resumable: a finished run is never run again. At the 13,300 tokens/s measured on 2 idle cores, release 1 is
4,620 steps (about 95 minutes) and its check 600; per seed the retrains are 4,470, 4,740 and 5,010 steps (about
4.9 hours), switch and continue about 1,800 together (37 minutes), and the cosine retrain 5,010 (103 minutes,
first seed). Three seeds: about 20 hours. Writes docs/results/c03_switch.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c1_replay import measured_shifts  # noqa: E402
from common import ensure, heldout, say  # noqa: E402
from corpora import GERMAN, PROSE, TOKENIZER  # noqa: E402
from regime import REGIME, begin, release_check  # noqa: E402
from stats import difference, gap_cell, summary, within  # noqa: E402

from renewlm.store import Store  # noqa: E402
from renewlm.train.config import validate_run  # noqa: E402
from renewlm.updates.paradigm import run_file, run_update  # noqa: E402
from renewlm.updates.plan import make_plan  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.retrain import retrain_config  # noqa: E402
from renewlm.versions.ledger import cost  # noqa: E402

STUDY = "c03_switch"
PARADIGMS = ("retrain", "switch", "continue")
RELEASE1 = "c3-r1"
INCREMENT = 270  # new-data steps of each later release: 4.4M tokens, less than one pass over cv-man (4.5M), the smallest
REPLAY = 0.05  # of the earlier releases, in switch and continue (Ibrahim et al.'s share for a weak shift)
DECAY = 0.1  # the branch's share of its update, and the wsd retrain's of its run (MiniCPM; renewlm's default)
PAPER_DECAY = 0.45  # the decay fraction at which the cost model gives the paper's 58% for four equal releases
COST_LIMIT = 0.60


def release_one(store: Store) -> dict:
    """Release 1, shared: the main path and its release as one `paradigm: switch` run file, and the release's
    convergence check (continued one update's length on its own data)."""
    if not store.exists("versions", RELEASE1):
        cfg = validate_run({
            "name": RELEASE1, "preset": REGIME.preset, "tokenizer": TOKENIZER, "paradigm": "switch", "decay_fraction": DECAY,
            "mixture": {"phases": [{"corpora": {PROSE: 1.0}}]},
            "schedule": {"name": "wsd", "peak_lr": REGIME.peak_lr, "decay_fraction": 0.0},
            "steps": REGIME.base_steps, "seed": 0, **REGIME.run_shape(),
        }, RELEASE1)
        trained(lambda: run_file(cfg, store), RELEASE1)
    return release_check(store, RELEASE1)


def trained(run, name: str) -> None:
    """Run `run` (a trainer call); a Ctrl-C or SIGTERM leaves its checkpoint and says how to resume."""
    try:
        run()
    except KeyboardInterrupt:
        say(f"stopped during {name}; run the same command again to resume")
        raise SystemExit(130) from None


def retrain(store: Store, name: str, parent: str, corpus: str, seed: int, family: str = "wsd") -> None:
    """`renewlm update NAME --from PARENT --data CORPUS --paradigm retrain`, with the releases' schedule family (wsd)
    or as the paradigm makes it (cosine)."""
    cfg = retrain_config(store, UpdateRequest(name=name, parent=parent, data=[corpus], paradigm="retrain", steps=INCREMENT, seed=seed,
                                              **REGIME.run_shape()))
    run = cfg.model_dump(mode="json")
    if family == "wsd":
        run["schedule"] = {"name": "wsd", "peak_lr": cfg.schedule.peak_lr, "decay_fraction": DECAY}
    ensure(store, validate_run(run, name))


def update(store: Store, paradigm: str, name: str, parent: str, corpus: str, seed: int) -> None:
    """A switch or continue release: INCREMENT/(1 − REPLAY) steps, so each reads INCREMENT steps of new data."""
    if store.exists("versions", name):
        return
    request = UpdateRequest(name=name, parent=parent, data=[corpus], paradigm=paradigm, replay=REPLAY,
                            steps=round(INCREMENT / (1 - REPLAY)), seed=seed, **REGIME.run_shape())
    trained(lambda: run_update(store, request), name)
    say(f"  {name}: release from {parent} ({paradigm})")


def series(store: Store, paradigm: str, corpora: list[str], seed: int) -> list[str]:
    """The paradigm's releases for this seed, release 1 the shared `c3-r1`."""
    short = {"retrain": "rt", "switch": "sw", "continue": "ct"}[paradigm]
    names = [RELEASE1] + [f"c3-{short}{k}-s{seed}" for k in range(2, len(corpora) + 1)]
    for parent, name, corpus in zip(names, names[1:], corpora[1:]):
        if paradigm == "retrain":
            retrain(store, name, parent, corpus, seed)
        else:
            update(store, paradigm, name, parent, corpus, seed)
    return names


def rows(names: dict[str, list[list[str]]], losses: dict, flops: dict[str, float], corpora: list[str]) -> dict[str, list[dict]]:
    """Per paradigm and release: the mean held-out loss over the corpora so far, each corpus's, and the series FLOPs."""
    out = {}
    for paradigm, by_seed in names.items():
        out[paradigm] = []
        for k in range(len(corpora)):
            at = [s[k] for s in by_seed]
            seen = corpora[: k + 1]
            out[paradigm].append({
                "release": k + 1, "versions": at, "corpus": corpora[k],
                "mean_loss": summary([sum(losses[v][c] for c in seen) / len(seen) for v in at]),
                "losses": {c: summary([losses[v][c] for v in at]) for c in seen},
                "series_flops": summary([flops[v] for v in at]),
            })
    return out


def verdict(table: dict[str, list[dict]]) -> dict:
    """Switch against retrain at the last release (loss and cost) and continue's gap to retrain, release by release,
    all paired by seed. Each check is an interval's verdict, None with one seed."""
    last = {p: table[p][-1] for p in PARADIGMS}
    retrain_loss = last["retrain"]["mean_loss"]
    switch = difference(last["switch"]["mean_loss"]["values"], retrain_loss["values"], paired=True)
    tolerance = max(0.02, 0.01 * retrain_loss["mean"], retrain_loss["sd"] or 0.0)
    ratio = last["switch"]["series_flops"]["mean"] / last["retrain"]["series_flops"]["mean"]

    def gaps(k: int) -> list[float]:
        return [c - r for c, r in zip(table["continue"][k]["mean_loss"]["values"], table["retrain"][k]["mean_loss"]["values"])]

    # release 2: the gap itself (release 1 is one model in every paradigm); then each release's gap minus the one before
    growth = {2: difference(table["continue"][1]["mean_loss"]["values"], table["retrain"][1]["mean_loss"]["values"], paired=True)}
    growth.update({k + 1: difference(gaps(k), gaps(k - 1), paired=True) for k in range(2, len(table["retrain"]))})
    checks = {
        "switch_as_good_as_retrain": within(switch, tolerance),
        "switch_cost_at_most_60pct": ratio <= COST_LIMIT,
        "continue_falls_further_behind": None if any(g["low"] is None for g in growth.values()) else all(g["low"] > 0 for g in growth.values()),
    }
    decided = None not in checks.values()
    return {"switch_minus_retrain": switch, "tolerance": tolerance, "cost_ratio": ratio, "cost_limit": COST_LIMIT,
            "continue_gap_growth": {str(k): g for k, g in growth.items()}, "checks": checks, "decided": decided,
            "reproduced": all(checks.values()) if decided else None}


def planned(store: Store, releases: int, pretrain_tokens: int) -> dict:
    """`renewlm plan`'s share of retraining per paradigm: this series, and switch's over as many equal releases
    without replay (the paper's setting) at A = 0.1 and 0.45."""
    tokens = INCREMENT * REGIME.batch_tokens

    def shares(**kw) -> dict:
        data = make_plan(store, releases=releases, tokens_per_release=tokens, model=RELEASE1, **kw).to_dict()
        return {p: data["paradigms"][p]["cumulative_ratio"] for p in PARADIGMS}

    return {"series": shares(decay_fraction=DECAY, replay=REPLAY, pretrain_tokens=pretrain_tokens),
            "equal": {str(a): shares(decay_fraction=a)["switch"][-1] for a in (DECAY, PAPER_DECAY)}}


def main() -> None:
    def options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-cosine", action="store_true", help="leave out the cosine retrain at the last release")

    study = begin(STUDY, __doc__, options)
    store, args = study.store, study.args
    shifts = measured_shifts(store)
    corpora = [PROSE, shifts["weak"], shifts["strong"], GERMAN]
    check = release_one(store)
    names = {p: [series(store, p, corpora, s) for s in args.seeds] for p in PARADIGMS}
    first = args.seeds[0]
    cosine = None
    if not args.no_cosine:
        cosine = f"c3-rtc{len(corpora)}-s{first}"
        retrain(store, cosine, names["retrain"][0][-2], corpora[-1], first, family="cosine")
    versions = list(dict.fromkeys([v for by_seed in names.values() for s in by_seed for v in s] + ([cosine] if cosine else [])))
    losses = heldout(store, versions, corpora)
    flops = {v: cost(store, v)["series_flops"] for v in versions}
    table = rows(names, losses, flops, corpora)
    result = verdict(table)
    for p in PARADIGMS:
        say(f"{p:>9}: " + "  ".join(f"r{r['release']} {r['mean_loss']['mean']:.4f} ({r['series_flops']['mean']:.3g} FLOPs)" for r in table[p]))
    say(f"switch − retrain at release {len(corpora)}: {gap_cell(result['switch_minus_retrain'], 4)} (inside ±{result['tolerance']:.4f}?); "
        f"cost {result['cost_ratio']:.0%} of the retrain series; continue's gap growth "
        + ", ".join(f"r{k} {gap_cell(g, 4, relative=k == '2')}" for k, g in result["continue_gap_growth"].items()))
    say(f"checks: {result['checks']}; " + ("decided" if result["decided"] else "not decided (one seed)"))
    release1_tokens = cost(store, RELEASE1)["cumulative_tokens"]
    out = {"release_one_check": check, "corpora": corpora, "increment_steps": INCREMENT, "replay": REPLAY, "decay_fraction": DECAY,
           "table": table, "plan": planned(store, len(corpora), release1_tokens), "verdict": result}
    if cosine:
        seen = corpora
        out["cosine_retrain"] = {"version": cosine, "mean_loss": sum(losses[cosine][c] for c in seen) / len(seen),
                                 "losses": losses[cosine], "series_flops": flops[cosine]}
    study.write(out)


if __name__ == "__main__":
    main()
