"""Study 3: path switching over four releases (Wang et al. 2024, arXiv 2410.04103; recipes.md §3).

Question: over a series of data releases, does path switching (a main path kept at the peak LR, each
release a short complete decay branched off it) come as close to retraining from scratch on all data
so far as the paper says, at a fraction of its cost, while continuing from the last release falls
further behind with every release?

Data: four disjoint releases of standard-library source code, one per quarter of the modules (in
path order, split at top-level module boundaries, about the same bytes each): `s3-r1` … `s3-r4`.
Generated modules are left out (GENERATED): they are tables and string dumps, not code people write.
Release 1 is a pre-training on r1; releases 2–4 each add one corpus. Each paradigm makes every
release as `renewlm update --paradigm P` does (`run_update`):
- retrain: from scratch on all data so far (release 1 is the cosine pre-training, shared with continue);
- continue: the last release's weights, re-warm and re-decay (cosine), 5% replay of the earlier releases;
- switch: release 1 is a run file with `paradigm: switch` (a trunk that never decays + its branch);
  later releases continue the trunk at the peak LR (5% replay) and branch a release off it, decaying
  over `decay_fraction` of the update (default 0.1; a sweep of other values on the first seed).
Per release: held-out loss on every corpus seen so far (mean over them), from each version's own final
evaluation (renewlm eval's windows); the series' cumulative FLOPs from the ledger (`cost`: series
FLOPs) beside `renewlm plan`'s prediction for the same series.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    TOKENIZER,
    arguments,
    figure_path, save_figure,
    mean_spread,
    pretrain_config,
    say,
    write_jsonl,
    write_results,
)

from renewlm.data.prepare import prepare
from renewlm.examples.demo import code_documents, stdlib_files
from renewlm.train.config import validate_run
from renewlm.updates.paradigm import run_file, run_update
from renewlm.updates.request import UpdateRequest
from renewlm.updates.plan import SHOWN, make_plan
from renewlm.versions import read_version
from renewlm.versions.ledger import cost

STUDY = "s03_path_switching"
RELEASES = 4
CORPORA = [f"s3-r{i}" for i in range(1, RELEASES + 1)]
PARADIGMS = SHOWN  # plan's order: the baseline first
REPLAY = 0.05  # Ibrahim et al. 2024: 5% replay for a weak shift (the releases are all Python source)
DEFAULT_DECAY = 0.1  # renewlm's default, MiniCPM's "10% of the steps is enough" (recipes.md §3)
SWEEP_DECAYS = (0.05, 0.45)
# encodings: 1.4 MB of generated charmap tables (a loss near 2.5 after 50 steps, it would dominate the
# mean of its release); pydoc_data: the language reference as one string dump (prose, not code).
GENERATED = {"encodings", "pydoc_data"}  # 0.45: the decay at which the cost model gives the paper's 58% for 4 releases


def extra(parser) -> None:
    parser.add_argument("--decays", type=float, nargs="*", default=list(SWEEP_DECAYS),
                        help=f"other decay fractions for switch, on the first seed (default {' '.join(map(str, SWEEP_DECAYS))})")


# --- data -------------------------------------------------------------------------------------------------


def top_module(path: Path) -> str:
    """The top-level module or package a standard-library file belongs to (`email` for email/utils.py)."""
    import sysconfig

    return path.relative_to(sysconfig.get_paths()["stdlib"]).parts[0].removesuffix(".py")


def module_quarters(files: list[Path]) -> list[list[Path]]:
    """The standard library's files in path order, cut into RELEASES runs of whole top-level modules of
    about the same bytes each, so no module's code is in two releases."""
    modules: dict[str, list[Path]] = {}
    for path in files:
        if top_module(path) not in GENERATED:
            modules.setdefault(top_module(path), []).append(path)
    total = sum(p.stat().st_size for paths in modules.values() for p in paths)
    groups: list[list[Path]] = [[]]
    used = 0
    for paths in modules.values():
        size = sum(p.stat().st_size for p in paths)
        if used + size / 2 > total * len(groups) / RELEASES and len(groups) < RELEASES:  # its middle is past the cut
            groups.append([])
        groups[-1] += paths
        used += size
    return groups


def build_releases(store) -> None:
    """Corpora s3-r1 … s3-r4 (once per store), tokenized with the shared `rp` tokenizer."""
    if all(store.exists("corpora", c) for c in CORPORA):
        return
    groups = module_quarters(stdlib_files())
    with tempfile.TemporaryDirectory() as tmp:
        for name, files in zip(CORPORA, groups):
            budget = sum(p.stat().st_size for p in files)
            path = write_jsonl(Path(tmp) / f"{name}.jsonl", code_documents(files, budget))
            corpus = prepare(store, name, [path], TOKENIZER, val_fraction=0.05, min_heldout_tokens=40_000, overwrite=True)
            say(f"corpus {name} (modules {top_module(files[0])} … {top_module(files[-1])}): {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")


# --- the series -------------------------------------------------------------------------------------------


def names(paradigm: str, seed: int, decay: float = DEFAULT_DECAY) -> list[str]:
    """The release names of one series. Continue and retrain share release 1, the cosine pre-training."""
    tag = f"s{seed}" if decay == DEFAULT_DECAY else f"d{decay:g}-s{seed}"
    first = f"s3-sw1-{tag}" if paradigm == "switch" else f"s3-v1-s{seed}"
    short = {"retrain": "rt", "continue": "ct", "switch": "sw"}[paradigm]
    return [first] + [f"s3-{short}{i}-{tag}" for i in range(2, RELEASES + 1)]


def release_steps(size) -> int:
    """New-data steps per release: half an update of the size, so 4 releases × 3 paradigms × 2 seeds fit."""
    return size.update_steps // 2


def first_release(store, size, paradigm: str, name: str, seed: int, decay: float) -> None:
    """Release 1: pre-training on r1. For switch a run file with `paradigm: switch`: a trunk at the peak
    LR that never decays (wsd without decay) and the release branched off it (docs/versions.md)."""
    if store.exists("versions", name):
        return
    if paradigm != "switch":
        cfg = pretrain_config(name, size, {CORPORA[0]: 1.0}, steps=release_steps(size), seed=seed)
    else:
        run = pretrain_config(name, size, {CORPORA[0]: 1.0}, steps=release_steps(size), seed=seed,
                              schedule={"name": "wsd", "peak_lr": size.peak_lr, "decay_fraction": 0.0}).model_dump(mode="json")
        cfg = validate_run({**run, "paradigm": "switch", "decay_fraction": decay}, name)
    started = time.perf_counter()
    run_file(cfg, store)
    say(f"  {name}: release 1 ({paradigm}) in {time.perf_counter() - started:.0f} s")


def update(store, size, paradigm: str, name: str, parent: str, corpus: str, seed: int, decay: float) -> None:
    """Release i ≥ 2, as `renewlm update NAME --from PARENT --data CORPUS --paradigm P` makes it.

    Continue and switch replay 5% of the earlier releases and train T/(1−F) steps, so each sees T new
    tokens as retraining does (compute-equivalent replay, the same arithmetic `renewlm plan` uses)."""
    if store.exists("versions", name):
        return
    shape = size.run_shape()
    options = {"steps": release_steps(size), **shape, "seed": seed}
    if paradigm != "retrain":
        options.update(replay=REPLAY, steps=round(release_steps(size) / (1 - REPLAY)))
    if paradigm == "switch":
        options["decay_fraction"] = decay
    started = time.perf_counter()
    run_update(store, UpdateRequest(name=name, parent=parent, data=[corpus], paradigm=paradigm, **options))
    say(f"  {name}: release from {parent} ({paradigm}) in {time.perf_counter() - started:.0f} s")


def run_series(store, size, paradigm: str, seed: int, decay: float = DEFAULT_DECAY) -> list[str]:
    releases = names(paradigm, seed, decay)
    first_release(store, size, paradigm, releases[0], seed, decay)
    for i in range(1, RELEASES):
        update(store, size, paradigm, releases[i], releases[i - 1], CORPORA[i], seed, decay)
    return releases


# --- measurements -----------------------------------------------------------------------------------------


def measure(store, releases: list[str]) -> list[dict]:
    """Per release: held-out loss on each corpus so far and their mean, and the ledger's series cost."""
    out = []
    for i, name in enumerate(releases):
        losses = read_version(store, name).losses
        seen = {c: losses[c] for c in CORPORA[: i + 1]}
        ledger = cost(store, name)
        out.append({
            "version": name, "losses": seen, "mean_loss": sum(seen.values()) / len(seen),
            "series_flops": ledger["series_flops"], "series_ratio_to_retraining_each": ledger["series_ratio"],
            "series": ledger["series"],
        })
    return out


def planned(store, size, version: str, decay: float) -> dict:
    """`renewlm plan --releases 4 --tokens-per-release T --model VERSION --decay-fraction A --replay F`."""
    plan = make_plan(store, releases=RELEASES, tokens_per_release=release_steps(size) * size.batch_tokens,
                     model=version, decay_fraction=decay, replay=REPLAY)
    data = plan.to_dict()
    return {p: {"flops": data["paradigms"][p]["flops"], "cumulative_ratio": data["paradigms"][p]["cumulative_ratio"]}
            for p in PARADIGMS}


def cumulative(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def summarize(runs: dict[str, dict[int, list[dict]]]) -> dict[str, list[dict]]:
    """Mean ± spread over seeds, per paradigm and release: the loss on all data so far and the cost."""
    table = {}
    for key, by_seed in runs.items():
        rows = []
        for i in range(RELEASES):
            per_seed = [series[i] for series in by_seed.values()]
            rows.append({
                "release": i + 1,
                "mean_loss": mean_spread([r["mean_loss"] for r in per_seed]),
                "losses": {c: mean_spread([r["losses"][c] for r in per_seed]) for c in per_seed[0]["losses"]},
                "series_flops": mean_spread([r["series_flops"] for r in per_seed]),
            })
        table[key] = rows
    return table


# --- output -----------------------------------------------------------------------------------------------


def print_table(table: dict[str, list[dict]], plan: dict) -> None:
    retrain = table["retrain"]
    say("\nloss on all data so far (mean over the releases' corpora; ± half the range over seeds), cumulative cost")
    say(f"{'paradigm':<16}{'release':>8}{'loss':>16}{'vs retrain':>12}{'FLOPs so far':>14}{'planned':>11}{'measured/retrain':>18}{'planned/retrain':>17}")
    for paradigm, rows in table.items():
        planned_cum = cumulative(plan[paradigm]["flops"])
        for i, row in enumerate(rows):
            loss, flops = row["mean_loss"], row["series_flops"]["mean"]
            gap = loss["mean"] - retrain[i]["mean_loss"]["mean"]
            ratio = flops / retrain[i]["series_flops"]["mean"]
            plan_ratio = f"{plan[paradigm]['cumulative_ratio'][i]:.0%}"
            say(f"{paradigm if i == 0 else '':<16}{i + 1:>8}{loss['mean']:>10.3f} ±{loss['spread']:.3f}{gap:>+12.3f}"
                f"{flops:>14.3g}{planned_cum[i]:>11.3g}{ratio:>18.0%}{plan_ratio:>17}")


def plot(table: dict[str, list[dict]], plan: dict, sweep: dict[float, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(1, RELEASES + 1))
    colors = {"retrain": "tab:blue", "continue": "tab:orange", "switch": "tab:green"}
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.6), dpi=110)
    for paradigm in PARADIGMS:
        rows = table[paradigm]
        a.errorbar(xs, [r["mean_loss"]["mean"] for r in rows], yerr=[r["mean_loss"]["spread"] for r in rows],
                   marker="o", capsize=3, color=colors[paradigm], label=paradigm)
        b.plot(xs, [r["series_flops"]["mean"] for r in rows], marker="o", color=colors[paradigm], label=f"{paradigm} measured")
        b.plot(xs, cumulative(plan[paradigm]["flops"]), ls="--", marker="x", color=colors[paradigm], alpha=0.7,
               label=f"{paradigm} planned")
    a.set(xlabel="release", ylabel="held-out loss, mean over corpora so far", title="loss on all data so far (± spread over seeds)")
    b.set(xlabel="release", ylabel="cumulative training FLOPs (series)",
          title="cost: ledger (o, measured) vs renewlm plan (×, dashed)")
    for decay, series in sorted(sweep.items()):
        c.plot(xs, [r["mean_loss"] for r in series], marker="o", label=f"switch, decay {decay:g}")
    c.plot(xs, [r["mean_loss"]["values"][0] for r in table["retrain"]], ls=":", color=colors["retrain"], label="retrain")
    c.set(xlabel="release", ylabel="held-out loss, mean over corpora so far", title="switch's decay fraction (first seed)")
    for ax in (a, b, c):
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.splitlines()[0], extra)
    store, size = args.store, args.size
    build_releases(store)
    runs: dict[str, dict[int, list[dict]]] = {p: {} for p in PARADIGMS}
    for seed in args.seeds:
        for paradigm in PARADIGMS:
            say(f"seed {seed}, {paradigm}")
            runs[paradigm][seed] = measure(store, run_series(store, size, paradigm, seed))
    first = args.seeds[0]
    sweep = {DEFAULT_DECAY: runs["switch"][first]}
    for decay in args.decays:
        say(f"seed {first}, switch with decay fraction {decay:g}")
        sweep[decay] = measure(store, run_series(store, size, "switch", first, decay))
    model = names("continue", first)[0]
    plan = planned(store, size, model, DEFAULT_DECAY)
    plan_sweep = {d: planned(store, size, model, d)["switch"] for d in sweep}
    table = summarize(runs)
    print_table(table, plan)
    say(f"\nswitch's decay fraction (seed {first}): loss on all data so far per release; series cost at release {RELEASES}")
    for decay, series in sorted(sweep.items()):
        losses = " ".join(f"{r['mean_loss']:.3f}" for r in series)
        say(f"  decay {decay:<5g} {losses}   {series[-1]['series_flops']:.3g} FLOPs measured, "
            f"{cumulative(plan_sweep[decay]['flops'])[-1]:.3g} planned, planned {plan_sweep[decay]['cumulative_ratio'][-1]:.0%} of retraining")
    plot(table, plan, sweep, figure_path(STUDY))
    write_results(STUDY, args, {
        "corpora": CORPORA, "release_steps": release_steps(size), "replay": REPLAY, "decay_fraction": DEFAULT_DECAY,
        "table": table, "runs": {p: {str(s): v for s, v in by_seed.items()} for p, by_seed in runs.items()},
        "plan": plan, "decay_sweep": {str(d): {"runs": s, "plan": plan_sweep[d]} for d, s in sweep.items()},
    }, started)


if __name__ == "__main__":
    main()
