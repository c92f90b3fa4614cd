"""The ledger section: every version's cost against retraining (renewlm.versions.cost), the store's
longest series of releases as spent, and `renewlm plan`'s chart for a series of that shape.

The plan is priced for N = the releases of the longest series, a pre-training P = the data its first
release saw, and T = the new data each later release read (the rest of its lineage's data tokens /
(N − 1)), on the model of its last release: what the same series would cost under each paradigm,
beside what it did cost.
"""

from __future__ import annotations

import tempfile
from html import escape
from pathlib import Path

from renewlm.errors import RenewError
from renewlm.report import figures
from renewlm.report.collect import ReportData
from renewlm.report.graph import graph_order
from renewlm.report.html import code, empty, figure, paragraph, table
from renewlm.report.sections import count, flops, share
from renewlm.updates.plan import make_plan, plot_plan
from renewlm.versions import cost


def longest_series(data: ReportData) -> list[str]:
    """The releases of the longest series among the versions shown (ties: the most recent)."""
    candidates = [v for v, m in data.versions.items() if m.kind not in ("trunk", "soup") and data.costs[v]["series"]]
    if not candidates:
        return []
    best = max(candidates, key=lambda v: (len(data.costs[v]["series"]), data.versions[v].created or "", v))
    return data.costs[best]["series"]


def ledger_section(data: ReportData) -> str:
    rows, classes = [], []
    for v in graph_order(data.under, data.versions):
        c, kind = data.costs[v], data.versions[v].kind
        ratio = c["cumulative_flops"] / c["retrain_flops"] if c["retrain_flops"] else None
        series = len(c["series"]) if c["series_ratio"] is not None else None
        rows.append([v, kind or "–", count(c["tokens"]), flops(c["flops"]), flops(c["cumulative_flops"]),
                     flops(c["retrain_flops"]), share(ratio), "–" if series is None else str(series), share(c["series_ratio"])])
        classes.append("trunk" if kind == "trunk" else "")
    out = table(
        ["version", "kind", "own tokens", "own FLOPs", "cumulative FLOPs", "retrain FLOPs", "cumulative / retrain",
         "releases in series", "series / retraining each"],
        rows, numeric=set(range(2, 9)), row_classes=classes,
    )
    out += paragraph(
        "Own: the run that wrote the version. Cumulative: it and every ancestor, each run once (a trunk shared by many "
        "releases is paid once). Retrain: one run from scratch on all the data it has seen. Series: every release in "
        "its history, as spent against retraining each of them from scratch (docs/versions.md, the ledger).", "caption")
    series = longest_series(data)
    if len(series) < 2:
        return out + empty(
            f"A series needs two releases or more: {code('renewlm update NEW --from V --data C')} "
            f"(or {code('--paradigm switch')}) makes the next release of a version."
        )
    costs = [data.costs.get(r) or cost(data.store, r) for r in series]
    if all(c["series_retrain_flops"] for c in costs):
        out += f"<h3>The longest series: {escape(' → '.join(series))}</h3>"
        out += figure(figures.series_figure(series, [c["series_flops"] for c in costs], [c["series_retrain_flops"] for c in costs]),
                      "FLOPs spent on the series against retraining each release")
    return out + plan_part(data, series, costs[0], costs[-1])


def plan_part(data: ReportData, series: list[str], first: dict, last: dict) -> str:
    releases = len(series)
    pretrain = first["data_tokens"]
    tokens = (last["data_tokens"] - pretrain) / (releases - 1)
    if pretrain <= 0 or tokens <= 0:
        return empty(f"The series records no data tokens for its first release or its updates, so it cannot be priced; "
                     f"{code('renewlm plan --releases N --tokens-per-release T')} prices a series you describe.")
    command = (f"renewlm plan --releases {releases} --pretrain-tokens {pretrain} --tokens-per-release {tokens:.0f} "
               f"--model {series[-1]}")
    try:
        plan = make_plan(data.store, releases=releases, tokens_per_release=tokens, model=series[-1], pretrain_tokens=pretrain)
        with tempfile.TemporaryDirectory(prefix="renewlm-report-") as folder:
            image = figures.png_file(plot_plan(plan, Path(folder) / "plan.png").read_bytes())
    except RenewError as e:
        return paragraph(f"The plan chart for this series cannot be drawn: {escape(str(e))}", "note")
    ratios = {p: plan.ratios(p)[-1] for p in ("continue", "switch")}
    measured = last["series_ratio"]
    caption = (
        f"{code(command)}: N = {releases} releases (the longest series), P = {pretrain:,} tokens of data in its first "
        f"release, T = {tokens:,.0f} tokens of new data in each later one (the rest of the series' "
        f"{last['data_tokens']:,} data tokens / (N − 1)), A = {plan.decay_fraction:g}, no replay. "
        f"Planned against retraining: continue {share(ratios['continue'])}, switch {share(ratios['switch'])}; "
        f"this series as spent: {share(measured)}."
    )
    return "<h3>The plan for a series of this shape</h3>" + figure(image, "renewlm plan chart", caption, width=768)
