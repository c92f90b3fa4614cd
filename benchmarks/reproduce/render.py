"""The tables of the docs, rendered from the studies' JSON (docs/results/*.json), never copied by hand.

A table lives in a doc between two markers, `<!-- render:NAME -->` and `<!-- /render:NAME -->`; NAME is one of
RENDERERS, each a function of the JSON it reads. This script rewrites every marked block from the JSON;
`--check` changes nothing and exits 1 naming each block the JSON no longer gives (tests/test_results_docs.py
runs it, so the docs and the JSON cannot disagree).

    python benchmarks/reproduce/render.py [--check]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import cell, difference, gap_cell  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(?P<open><!-- render:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(?P<close><!-- /render:(?P=name) -->)", re.S)

WHAT = {
    "cv-prose": "docstrings (200+ characters) of every installed module + the Python 3.11 documentation",
    "cv-man": "Linux manual pages, sections 2-8, formatted by groff",
    "cv-code": "Python source of the installed packages",
    "cv-de": "German manual pages (not in the tokenizer's data)",
}


def _json(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def _table(header: list[str], rows: list[list[str]], right: int = 1) -> str:
    """A markdown table; columns from `right` on are right-aligned."""
    align = ["---" if i < right else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def corpora() -> str:
    data = _json("corpora")
    rows = []
    for name, c in data["corpora"].items():
        label = f"`{name}` (the base's)" if name == "cv-prose" else f"`{name}`"
        per_token = c["text_bytes"] / (c["train_tokens"] + c["heldout_tokens"])
        rows.append([label, WHAT.get(name, ""), f"{c['train_tokens']:,}", f"{c['heldout_tokens']:,}", f"{per_token:.2f}"])
    return _table(["corpus", "what", "training tokens", "held out", "UTF-8 bytes per token"], rows, right=2)


def regime_check(name: str = "regime") -> str:
    data = _json(name)
    rows = []
    for r in data["curve"]:
        gain = f"{r['gain']:.4f}" if "gain" in r else ""
        rows.append([f"`{r['version']}`", f"{r['tokens'] / 1e6:.1f}M", f"{r['loss']:.4f}", gain])
    c, regime = data["convergence"], data["regime"]
    seconds = data.get("training_seconds", {}).get(data["base"])
    verdict = "passes (converged)" if c["converged"] else "fails (NOT converged)"
    line = (f"\n{regime['base_steps']:,} steps of {regime['batch_tokens']:,} tokens, {data['tokens_per_parameter']:.1f} tokens per "
            f"parameter ({data['parameters']:,} parameters){f', trained in {seconds:,.0f} s' if seconds else ''}. The check "
            f"gains {c['gain']:.4f} against the limit {c['limit']}: it {verdict}.\n")
    return _table(["version", "tokens in all", "held-out loss on `cv-prose`", "gain over the row above"], rows) + line


def regime_shifts() -> str:
    data = _json("regime")
    shifts = data["shifts"]
    rows = [[f"`{name}`", f"{loss:.4f}", f"{shifts['gap'][name]:+.4f}" if name in shifts["gap"] else ""]
            for name, loss in shifts["loss"].items()]
    return _table([f"`{data['base']}` on", "held-out loss", "gap over `cv-prose`"], rows)


def generated_replay() -> str:
    data = _json("generated_replay")
    out = []
    for shift, s in data["shifts"].items():
        rows = []
        for arm, r in s["arms"].items():
            removed = s["removed"].get(arm)
            rows.append([arm, f"{r['old']:.4f}", f"{r['forgetting']:+.4f}", "" if removed is None else f"{removed:.0%}", f"{r['new']:.4f}"])
        ratio = s["parent_over_real"]
        out.append(f"**{shift} shift (`{s['corpus']}`)**: base on `cv-prose` {s['base_old']:.4f}, on `{s['corpus']}` {s['base_new']:.4f}; "
                   f"sampled replay removes {'–' if ratio is None else f'{ratio:.2f}×'} what real replay removes "
                   f"(goal ≥ 0.5: {'met' if s['goal_met'] else 'not met'}).\n\n")
        out.append(_table(["arm", "`cv-prose` loss", "forgetting", "of it removed", f"`{s['corpus']}` loss"], rows))
        sampled = s["arms"]["parent"]
        if sampled.get("sampling_seconds"):
            out.append(f"\nSampling: {sampled['sampled_tokens']:,} tokens in {sampled['sampling_seconds']:.1f} s "
                       f"({sampled['sampling_tokens_per_second']:,} tokens/s), {sampled['sampling_flops']:.3g} FLOPs beside the "
                       f"update's {sampled['flops'] - sampled['sampling_flops']:.3g}.\n")
        out.append("\n")
    return "".join(out).rstrip("\n") + "\n"


def vocab_extension() -> str:
    data = _json("vocab_extension")
    chars, tokens = data["heldout_characters"], data["heldout_tokens"]
    names = list(tokens)
    head = (f"Held-out German, {data['heldout_documents']:,} documents, {chars:,} characters: "
            + ", ".join(f"`{n}` {tokens[n]:,} tokens ({chars / tokens[n]:.3f} characters per token)" for n in names)
            + f": {data['fewer_tokens']:.1%} fewer tokens with the extension (goal ≥ 15%: "
            f"{'met' if data['goal_fewer_tokens_met'] else 'not met'}), {data['add']:,} tokens added"
            + (f" in {data['extension_seconds']:.0f} s" if data.get("extension_seconds") else "") + ".\n\n")
    rows = []
    for version, r in data["versions"].items():
        g, p = r["german"], r["prose"]
        rows.append([f"`{version}`", f"{g['bits_per_byte']:.4f}", f"{g['bytes_per_token']:.2f}", f"{p['bits_per_byte']:.4f}",
                     f"{p['loss']:.4f}", "" if r["tokens"] is None else f"{r['tokens']:,}"])
    return head + _table(["version", "German bits/byte", "German bytes/token", "`cv-prose` bits/byte", "`cv-prose` loss", "tokens trained"], rows)


def averaging() -> str:
    data = _json("averaging")
    rows = []
    for k, kinds in data["summary"].items():
        for kind, s in kinds.items():
            d = s["minus_decay"]
            vs = ["", ""] if kind == "decay" else [gap_cell(d["new"], 4), gap_cell(d["base_data"], 4)]
            rows.append([k, kind, str(s["new"]["n"]), cell(s["new"], 4), cell(s["base_data"], 4), *vs])
    return _table(["release", "kind", "seeds", "new data loss", "`cv-prose` loss", "new minus decay", "`cv-prose` minus decay"], rows, right=2)


def predict_parent() -> str:
    data = _json("predict_parent")
    law = data["law"]
    head = (f"Fitted to {data['points']} points of `{data['base']}` on `{data['corpus']}`: L0 {law['L0']:.4f}, A {law['A']:.4f}, "
            f"α {law['alpha']:.4f}, C {law['C']:.4f}; residual {law['rmse']:.4f} nats (root mean square).\n\n")
    t = data["tail"]
    rows = [[f"`{data['base']}` steps {t['steps'][0]:,}–{t['steps'][-1]:,} ({len(t['steps'])} points), fitted to the {t['fitted_points']} before",
             f"{t['law']['mean_abs']:.4f} ({t['law']['mean_rel']:.2%})", f"{t['law']['worst_abs']:.4f} ({t['law']['worst_rel']:.2%})",
             f"{t['naive']['mean_abs']:.4f}"]]
    if "check" in data:
        c = data["check"]
        rows.append([f"`{c['version']}` at step {c['step']:,}: predicted {c['predicted']:.4f}, measured {c['measured']:.4f}",
                     f"{c['law']['mean_abs']:.4f} ({c['law']['mean_rel']:.2%})", "", f"{c['naive']['mean_abs']:.4f}"])
    return head + _table(["prediction", "mean error", "worst error", "naive's mean error"], rows)


def _share(x: float | None) -> str:
    return "none" if x is None else f"{x:.0%}"


def _rho(errors: dict) -> str:
    return "" if errors["spearman"] is None else f"{errors['spearman']:.2f}"


def predict_grid(name: str = "predict_grid") -> str:
    data = _json(name)
    rows = []
    for part, corpora in data["per_set"].items():
        for corpus, c in corpora.items():
            law, naive = c["law"], c["naive"]
            name = [part, f"`{corpus}` ({c['role']})", str(law["n"]), str(c["refused"])]
            if not law["n"]:
                rows.append([*name, "", "", "", "", ""])
                continue
            rows.append([*name, f"{law['mean_abs']:.4f} ({law['mean_rel']:.2%})", f"{law['worst_abs']:.4f} ({law['worst_rel']:.2%})",
                         _rho(law), f"{naive['mean_abs']:.4f}", _rho(naive)])
    head = _table(["set", "corpus", "predicted", "refused", "mean error", "worst error", "rank correlation", "naive's mean error",
                   "naive's rank correlation"], rows, right=2)
    runs = [[r["set"], f"`{r['version']}`", r["recipe"], str(r["steps"]), f"{r['replay']:.0%}",
             *[("refused" if r["predicted"] is None else f"{r['predicted'][c]:.3f}") + f" / {r['measured'][c]:.3f} / {r['naive'][c]:.3f}"
               for c in (r["corpus"], "cv-prose")]] for r in data["rows"]]
    runs_table = _table(["set", "update", "recipe", "steps", "replay", "new data: predicted / measured / naive",
                         "`cv-prose`: predicted / measured / naive"], runs, right=3)
    auto = [[a["shift"], f"{a['budget']:g}",
             "refused (the fit at " + ", ".join(map(_share, a["refused"])) + ")" if a.get("refused") else _share(a["chosen"]),
             "" if a["chosen"] is None else f"{a['predicted_rise']:+.4f}",
             "" if a["chosen"] is None else f"{a['measured_rise']:+.4f}", _share(a["smallest_that_met_it"])] for a in data["auto"]]
    auto_table = _table(["shift", "budget", "share chosen", "predicted rise", "measured rise", "smallest share that met it"], auto)
    return head + "\n" + runs_table + "\n" + auto_table


def c05_soups() -> str:
    data = _json("c05_soups")
    old, target = data["old"], data["target"]
    corpora = [old, data["update_corpus"], target]
    rows = [[f"{r['alpha']:g}" + (" (the base)" if r["alpha"] == 0 else " (the update)" if r["alpha"] == 1 else ""),
             *[cell(r["test"][c], 4) for c in corpora]] for r in data["table"]]
    table = _table(["α", *[f"`{c}`" + (" (old)" if c == old else " (target)" if c == target else " (trained on)")
                          for c in corpora]], rows)
    v = data["verdict"]
    chosen = ", ".join(f"seed {s}: {a:g}" for s, a in data["chosen"].items())
    gaps = "; ".join(f"on `{c}` {gap_cell(g, 4)}" for c, g in v["soup_minus_update"].items())
    claims = {"alpha_below_one": "every seed's chosen α is below 1",
              **{f"beats_update_on_{c}": f"the chosen soup is below the update on `{c}`" for c in (old, target)}}
    checks = _checks(v, claims)
    verdict = _verdict(v)
    return (table + f"\nα chosen on the validation windows: {chosen}. The chosen soup minus the update, on the test windows, "
            f"paired by seed (95% interval): {gaps}. {_below_everywhere(data, corpora)}Each update {data['steps']:,} steps; seeds "
            f"{', '.join(map(str, data['seeds']))}; {data['training_seconds']:,.0f} s of training in all.\n\n"
            f"The paper's claim, from its intervals ({verdict} as a whole):\n\n" + checks)


def _below_everywhere(data: dict, corpora: list[str]) -> str:
    """The largest α < 1 whose soup is below the update on every corpus, the update's own data too (each interval
    below 0, paired by seed), as a sentence; empty where there is none or no interval."""
    seeds = [str(s) for s in data["seeds"]]

    def minus_update(alpha: str, c: str) -> dict:
        return difference([data["losses"][s][alpha]["test"][c] for s in seeds], [data["losses"][s]["1.0"]["test"][c] for s in seeds], paired=True)

    for alpha in sorted((a for a in data["losses"][seeds[0]] if float(a) < 1), key=float, reverse=True):
        gaps = {c: minus_update(alpha, c) for c in corpora}
        if all(g["high"] is not None and g["high"] < 0 for g in gaps.values()):
            return (f"The largest α below the update on every corpus, the one it trained on too: {float(alpha):g} ("
                    + "; ".join(f"`{c}` {gap_cell(g, 4)}" for c, g in gaps.items()) + "). ")
    return ""


C01_CHECKS = {
    "within_tolerance": "the recommended share is as good as the union (its gap inside ±{tolerance:.3f})",
    "zero_gap_three_times": "without replay the gap is at least three times the recommended share's",
    "new_data_rise_at_most_0.01": "the recommended share costs the new data at most 0.01",
}


def c01_replay() -> str:
    data = _json("c01_replay")
    out = []
    for shift, r in data["shifts"].items():
        rows = [[f"{u['replay']:.0%}" + (" (recommended)" if u["replay"] == r["recommended"] else ""),
                 cell(u["old"], 4), cell(u["new"], 4), cell(u["avg"], 4)] for u in r["updates"]]
        if r["union"] is not None:
            rows.append(["union retrain", cell(r["union"]["old"], 4), cell(r["union"]["new"], 4), cell(r["union"]["avg"], 4)])
        out.append(f"**{shift.capitalize()} shift, `{r['corpus']}`**\n\n"
                   + _table(["replay of `cv-prose`", "`cv-prose` (old)", f"`{r['corpus']}` (new)", "average"], rows))
        v = r["verdict"]
        if not v["tested"]:
            out.append(f"\nNot tested: {v['why']}.\n")
            continue
        verdict = _verdict(v)
        checks = _checks(v, C01_CHECKS, tolerance=v["tolerance"])
        out.append(f"\nPaired by seed (95% interval): {r['recommended']:.0%} replay − union {gap_cell(v['gap_to_union'], 4)}; "
                   f"0% − union {gap_cell(v['zero_gap_to_union'], 4)}; the share's cost to the new data "
                   f"{gap_cell(v['new_data_cost'], 4)}. The paper's claims ({verdict} as a whole):\n\n" + checks)
    seeds = ", ".join(map(str, data["seeds"]))
    return "\n".join(out) + f"\nSeeds {seeds}; {data['steps']['update']:,} steps an update; {data['training_seconds']:,.0f} s of training in all.\n"


def _verdict(v: dict) -> str:
    """A study's verdict as a whole: reproduced, not reproduced, or not decided (some check had no interval)."""
    return "reproduced" if v["reproduced"] else "not reproduced" if v["decided"] else "not decided"


def _checks(v: dict, claims: dict[str, str], **values) -> str:
    """One line per check of the verdict: its claim (formatted with `values`) and what its interval shows."""
    return "".join(f"- {claims[k].format(**values)}: {_reading(value)}\n" for k, value in v["checks"].items())


def _reading(value: bool | None) -> str:
    """A check's verdict: shown by its interval, not shown (a tie, or the other way), or no interval to tell."""
    return "shown" if value is True else "not shown" if value is False else "not decided (no interval)"


C02_CHECKS = {
    "infinite_forgets_less": "infinite forgets less of `{a}` than cosine re-warm",
    "infinite_adapts_as_well": "infinite adapts as well as cosine (the interval at most {margin} above it)",
    "constant_forgets_least": "no re-warm forgets least (below cosine and infinite)",
    "constant_adapts_worst": "no re-warm adapts worst (above cosine and infinite)",
}


def c02_schedules() -> str:
    data = _json("c02_schedules")
    tasks, v, one = data["tasks"], data["verdict"], data["task_one_check"]
    a = tasks[0]
    rows = []
    for arm, after in data["after_task"].items():
        for t, r in enumerate(after[1:], start=2):
            rows.append([arm, f"{t} (`{r['task']}`)", cell(r["adaptation"], 4), cell(r["loss"][a], 4), cell(r["forgetting"][a], 4),
                         cell(r["forgetting"][tasks[1]], 4) if t > 2 else ""])
    table = _table(["arm", "after task", "that task's held-out loss", f"`{a}` loss", f"forgetting of `{a}`", f"forgetting of `{tasks[1]}`"],
                   rows, right=2)
    pairs = "".join(f"- {pair.replace('_minus_', ' − ')}: forgetting of `{a}` {gap_cell(v[pair]['forgetting'], 4)}, "
                    f"adaptation {gap_cell(v[pair]['adaptation'], 4)}\n"
                    for pair in ("infinite_minus_cosine", "constant_minus_cosine", "constant_minus_infinite"))
    checks = _checks(v, C02_CHECKS, a=a, margin=v["margin"])
    first = (f"The task-1 release `c2-inf-a` gains {one['gain']:.4f} when continued on its data (limit 0.03): "
             f"{'converged' if one['converged'] else 'NOT converged, so nothing below is read'}. ")
    cost = (f"Task 1 {data['steps']['task_one']:,} steps, each later task {data['steps']['per_task']:,}; "
            f"seeds {', '.join(map(str, data['seeds']))}; {data['training_seconds']:,.0f} s of training in all.")
    verdict = "reproduced" if v["decided"] and all(v["checks"].values()) else "not reproduced" if v["decided"] else "not decided"
    return (table + "\n" + first + cost + "\n\nAfter the last task, paired by seed (95% interval):\n\n" + pairs
            + f"\nThe paper's claims, each from its interval ({verdict} as a whole):\n\n" + checks)


C03_CHECKS = {
    "switch_as_good_as_retrain": "switch is as good as retraining at the last release (the interval inside ±{tolerance:.3f})",
    "switch_cost_at_most_60pct": "switch's series costs at most {limit:.0%} of the retrain series ({ratio:.0%} measured)",
    "continue_falls_further_behind": "continue falls further behind retraining with every release",
}


def c03_switch() -> str:
    data = _json("c03_switch")
    table, v, corpora, plan = data["table"], data["verdict"], data["corpora"], data["plan"]["series"]
    retrain = table["retrain"]
    rows = []
    for paradigm, releases in table.items():
        for r in releases:
            k = r["release"] - 1
            gap = difference(r["mean_loss"]["values"], retrain[k]["mean_loss"]["values"], paired=True)
            share = r["series_flops"]["mean"] / retrain[k]["series_flops"]["mean"]
            rows.append([paradigm, f"{r['release']} (`{r['corpus']}`)", cell(r["mean_loss"], 4),
                         "" if paradigm == "retrain" or k == 0 else gap_cell(gap, 4), f"{r['series_flops']['mean']:.3g}",
                         f"{share:.0%}", f"{plan[paradigm][k]:.0%}"])
    out = _table(["paradigm", "release (its new corpus)", "mean held-out loss, corpora so far", "− retrain (95% interval)",
                  "series FLOPs (ledger)", "of retraining", "planned"], rows, right=2)
    one = data["release_one_check"]
    growth = ", ".join(f"release {k} {gap_cell(g, 4, relative=k == '2')}" for k, g in v["continue_gap_growth"].items())
    text = (f"\nRelease 1 (`c3-r1`, shared) gains {one['gain']:.4f} when continued on its data (limit 0.03): "
            f"{'converged' if one['converged'] else 'NOT converged, so nothing below is read'}. Later releases add "
            f"{data['increment_steps']} steps of new data each; switch and continue replay {data['replay']:.0%}, the branch "
            f"decays over {data['decay_fraction']:.0%}. Seeds {', '.join(map(str, data['seeds']))}; "
            f"{data['training_seconds']:,.0f} s of training in all.\n")
    if "cosine_retrain" in data:
        c = data["cosine_retrain"]
        text += (f"\nThe cosine retrain at release {len(corpora)} (`{c['version']}`, one seed): {c['mean_loss']:.4f}, "
                 f"{c['series_flops']:.3g} series FLOPs.\n")
    equal = data["plan"]["equal"]
    text += (f"\n{len(corpora)} releases of equal increments and no replay would cost {equal['0.1']:.0%} of retraining at "
             f"the branch's decay of 10% and {equal['0.45']:.0%} at 45% (the paper's 58%), as `renewlm plan` prices them.\n")
    checks = _checks(v, C03_CHECKS, tolerance=v["tolerance"], limit=v["cost_limit"], ratio=v["cost_ratio"])
    return (out + text + f"\nContinue's gap to retrain, its growth per release (paired, 95% interval): {growth}. "
            f"The paper's claims, each from its interval ({_verdict(v)} as a whole):\n\n" + checks)


C04_CHECKS = {
    "five_best_or_tied": "start/5 is best or ties the best",
    "2_worse_than_five": "start/2 is worse than start/5",
    "50_worse_than_five": "start/50 is worse than start/5",
}


def c04_reuse() -> str:
    data = _json("c04_reuse")
    corpora, v = data["corpora"], data["verdict"]
    rows = [["no switch" if a == "never" else f"start/{a} (step {r['switch_step']})", cell(r["average"], 4),
             *(cell(r["loss"][c], 4) for c in corpora), "" if a == "5" else gap_cell(v["minus_five"][a], 4)]
            for a, r in data["results"].items()]
    labels = [f"`{c}`" + (" (added)" if c == data["added"] else "") for c in corpora]
    table = _table(["arm", "average", *labels, "arm − start/5 (95% interval)"], rows)
    blend = ", ".join(f"`{c}` {w:g}" for c, w in data["general_blend"].items())
    second = ", ".join(f"`{c}` {w:g}" for c, w in data["second_blend"].items())
    checks = _checks(v, C04_CHECKS)
    verdict = _verdict(v)
    return (table + f"\nEach arm {data['steps']:,} steps from `{data['base']}`: the general blend ({blend}), then from the "
            f"switch the second ({second}). The average is over the three corpora. Seeds {', '.join(map(str, data['seeds']))}; "
            f"{data['training_seconds']:,.0f} s of training in all; best arm: {v['best']}.\n\n"
            f"The paper's claims, each from its interval ({verdict} as a whole):\n\n" + checks)


C06_CHECKS = {
    "best_tokens_differ": "the kept corpora's best token counts differ",
    "ratio_beats_equal": "the ratio mixture beats the kept corpora 1:1 on the target",
    "ratio_beats_concatenation": "the ratio mixture beats their concatenation on the target",
}


def c06_sweep() -> str:
    data = _json("c06_sweep")
    sweep, target, tokens = data["sweep"], data["target"], data["regime"]["batch_tokens"]
    steps = [round(t / tokens) for t in sweep["settings"]["durations"]]
    rows = []
    for corpus, e in sweep["corpora"].items():
        by_tokens = {d["tokens"]: d["target"] for d in e["durations"]}
        rows.append([f"`{corpus}` ({data['roles'][corpus]})", f"{e['best_lr']:g}",
                     *(f"{by_tokens[t]:.4f}" if by_tokens.get(t) is not None else "" for t in sweep["settings"]["durations"]),
                     f"{e['spread']:.4f}", f"{e['best_tokens']:,}", ("kept" if e["in_mixture"] else "left out") + f": {e['reason']}"])
    table = _table(["candidate", "best LR", *(f"{n} steps" for n in steps), "spread", "best tokens", "mixture"], rows)
    v = data["verdict"]
    head = (f"The target is `{target}`'s held-out loss, measured at every point of the sweep; each duration decays "
            f"its last 20%. Seeds {', '.join(map(str, data['seeds']))}; {data['training_seconds']:,.0f} s of training in all.\n")
    if "arms" not in data:
        return table + "\n" + head + f"\nNot decided: {v['why']}.\n"
    arms = [[f"`{a}`", ", ".join(f"`{c}` {w:g}" for c, w in _weights(data["mixtures"][a]).items()), cell(r["target"], 4),
             cell(r["losses"][c], 4) if (c := "cv-prose") in r["losses"] else "",
             "" if a == "ratio" else gap_cell(v["ratio_minus"][a], 4)] for a, r in data["arms"].items()]
    arm_table = _table(["arm", "corpora", f"`{target}` (target)", "`cv-prose` (old)", "ratio − arm (95% interval)"], arms, right=2)
    checks = _checks(v, C06_CHECKS)
    verdict = _verdict(v)
    return (table + "\n" + head + f"\nThe mixtures, each from `{data['base']}` at LR {data['lr']:g}, replaying "
            f"{sweep['settings']['replay']:.0%} of `cv-prose`:\n\n" + arm_table
            + f"\nThe paper's claims, each from its interval ({verdict} as a whole):\n\n" + checks)


def _weights(mixture: dict) -> dict[str, float]:
    """A mixture's corpora and their share of its tokens (a concatenation: each phase's length)."""
    phases, start, out = mixture["phases"], 0.0, {}
    for phase in phases:
        end = phase.get("end", 1.0)
        total = sum(phase["corpora"].values())
        for c, w in phase["corpora"].items():
            out[c] = out.get(c, 0.0) + round((end - start) * w / total, 3)
        start = end
    return out


RENDERERS: dict[str, Callable[[], str]] = {
    "corpora": corpora, "regime-check": regime_check, "regime-check-20tpp": lambda: regime_check("regime-20tpp"),
    "regime-shifts": regime_shifts,
    "generated-replay": generated_replay, "vocab-extension": vocab_extension, "averaging": averaging,
    "predict-parent": predict_parent, "predict-grid": predict_grid,
    "predict-test": lambda: predict_grid("predict_test"), "c02-schedules": c02_schedules, "c05-soups": c05_soups,
    "c01-replay": c01_replay, "c03-switch": c03_switch, "c04-reuse": c04_reuse, "c06-sweep": c06_sweep,
}


def render(text: str) -> tuple[str, list[str]]:
    """`text` with every marked block rendered anew, and the names of the blocks that changed."""
    changed = []

    def one(m: re.Match) -> str:
        name = m["name"]
        if name not in RENDERERS:
            raise SystemExit(f"error: a block is marked render:{name}, but render.py knows only {', '.join(RENDERERS)}")
        body = RENDERERS[name]()
        if body != m["body"]:
            changed.append(name)
        return m["open"] + body + m["close"]

    return BLOCK.sub(one, text), changed


def stale(docs: Path = DOCS) -> list[str]:
    """`doc: block` for each block whose text the JSON no longer gives."""
    out = []
    for path in sorted(docs.glob("*.md")):
        _, changed = render(path.read_text())
        out += [f"{path.name}: {name}" for name in changed]
    return out


def main() -> None:
    if "--check" in sys.argv[1:]:
        behind = stale()
        if behind:
            print("stale tables (run python benchmarks/reproduce/render.py): " + "; ".join(behind), file=sys.stderr)
            raise SystemExit(1)
        return
    for path in sorted(DOCS.glob("*.md")):
        text, changed = render(path.read_text())
        if changed:
            path.write_text(text)
            print(f"{path.relative_to(ROOT)}: {', '.join(changed)}")


if __name__ == "__main__":
    main()
