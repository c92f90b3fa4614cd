"""The report's sections, each (id, heading, HTML body) built from the collected records and metrics.
A section with nothing to show says which command fills it."""

from __future__ import annotations

from html import escape

from renewlm.eval.core import load_spec
from renewlm.report import figures
from renewlm.report.collect import ReportData, final_losses
from renewlm.report.graph import graph_order, version_graph_svg
from renewlm.report.html import code, empty, figure, paragraph, table
from renewlm.versions import predicted_pairs

EVAL_INSTALL = "pip install 'renewlm[eval]'"
SKIP_FIELDS = {"num_fewshot", "limit", "evaluated"}  # bookkeeping beside an lm-eval task's numbers


def count(x) -> str:
    return "–" if x is None else f"{int(x):,}"


def flops(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def share(x) -> str:
    return "–" if x is None else f"{x:.0%}"


def signed(x) -> str:
    return "–" if x is None else f"{x:+.3f}"


def versions_section(data: ReportData) -> str:
    metas = data.versions
    order = graph_order(data.under, metas)
    svg = version_graph_svg(metas, data.under)
    legend = (
        "Filled circle: a release (or pre-trained model); grey: an import; hollow and dimmed: a trunk, the main path "
        "kept at high learning rate that releases branch off (path switching); diamond: a soup, with an edge from "
        "each version it averages. Dashed edges touch a trunk."
    )
    rows, classes = [], []
    for name in order:
        m = metas[name]
        parents = ", ".join(
            p.name + (f" ({p.weight:.3g})" if p.weight is not None and m.kind == "soup" else "")
            for p in m.parents
            if p.name
        ) or ", ".join(m.parent_names) or "–"
        rows.append([name, m.kind or "–", parents, m.paradigm or "–", count(m.tokens),
                     count(m.data_tokens), count(m.steps), (m.created or "–").replace("T", " ")])
        classes.append("trunk" if m.kind == "trunk" else "")
    return (
        f'<div class="scroll">{svg}</div><p class="caption">{legend}</p>'
        + table(["version", "kind", "parents", "paradigm", "tokens", "new data tokens", "steps", "created"], rows,
                numeric={4, 5, 6}, row_classes=classes)
    )


def runs_section(data: ReportData) -> str:
    if not data.runs:
        return empty(f"No run in the store has a metrics.jsonl yet. {code('renewlm train RUN.yaml')} or "
                     f"{code('renewlm update NEW --from V --data C')} writes one per run.")
    parts = [paragraph(
        "Per run, left: training loss (blue) and learning rate (orange) against tokens; right: held-out loss on every "
        "corpus during training. A rise on the old corpora is forgetting; a curve that first rises above its start and "
        "then falls is the stability gap (Guo et al. 2024), marked at its peak.", "caption")]
    rows = {name: i for i, name in enumerate(graph_order(data.under, data.versions))}
    # In the version graph's order; runs that wrote no version (yet) after, by name.
    for run in sorted(data.runs, key=lambda r: (rows.get(r.name, len(rows)), r.name)):
        facts = [f"{run.total_steps:,} steps logged"]
        if run.steps:
            facts.append(f"{run.steps[-1]['tokens']:,} tokens, final training loss {run.steps[-1]['loss']:.4f}")
        if run.evals:
            facts.append("held-out at the end: " + ", ".join(f"{c} {v:.4f}" for c, v in run.evals[-1]["eval"].items()))
        if not run.has_version:
            facts.append("no version yet (still running, stopped, or removed)")
        if run.dropped_lines:
            facts.append(f"{run.dropped_lines} unreadable line(s) of metrics.jsonl skipped")
        parts.append(f'<h3 id="run-{escape(run.name)}">{escape(run.name)}</h3>')
        parts.append(figure(figures.run_figure(run), f"training curves of run {run.name}", escape("; ".join(facts))))
    return "".join(parts)


def heldout_section(data: ReportData) -> str:
    losses, from_record, corpora = final_losses(data)
    if not losses:
        return empty(f"No held-out loss is recorded: runs record their final held-out loss on every corpus of their "
                     f"lineage, and {code('renewlm eval V1 V2 ...')} measures every version on every corpus.")
    order = [v for v in graph_order(data.under, data.versions) if v in losses]
    image = figures.heatmap(order, losses, from_record, corpora)
    caption = ("Final held-out loss per version and corpus, coloured within each corpus (green: its lowest). Numbers "
               f"are from {code('renewlm eval')} (evaluations.json); ° marks the run's own final loss (version.json), "
               "measured on the run's own windows and sequence length where the version was not evaluated on that corpus.")
    summaries = {v: data.evaluations[v].get("summary") for v in order}
    rows = []
    for v in order:
        s = summaries[v] or {}
        marks = set(s.get("updated_on") or [])
        cells = []
        for c in corpora:
            x = losses[v].get(c)
            cells.append("–" if x is None else f"{x:.3f}" + ("°" if c in from_record[v] else "") + ("*" if c in marks else ""))
        rows.append([v, *cells, signed(s.get("adaptation")), signed(s.get("forgetting"))])
    out = figure(image, "versions by corpora heatmap of final held-out loss", caption)
    out += table(["version", *corpora, "adaptation", "forgetting"], rows, numeric=set(range(1, len(corpora) + 3)))
    if any(summaries.values()):
        out += paragraph("* the version was updated on this corpus. Adaptation: the loss gained there against its parent; "
                         "forgetting: the mean loss lost on its older corpora against the best earlier version of its "
                         "lineage (see docs/evaluation.md).", "caption")
    else:
        out += empty(f"Adaptation and forgetting come from {code('renewlm eval')}: evaluate each version with its "
                     f"parent and ancestors, e.g. {code('renewlm eval ' + ' '.join(order[:3]))}.")
    return out + _predicted(data, order) + _bits_per_byte(data, order, corpora)


def _predicted(data: ReportData, order: list[str]) -> str:
    """Each update made with a prediction: per corpus, predicted before it trained against its run's own final loss."""
    rows = [[v, c, f"{p:.3f}", f"{m:.3f}", signed(m - p)]
            for v in order for c, p, m in predicted_pairs(data.versions[v].prediction, data.versions[v].losses)]
    if not rows:
        return ""
    return table(["version", "corpus", "predicted", "measured", "measured − predicted"], rows, numeric={2, 3, 4}) + paragraph(
        f"Predicted before the update trained ({code('renewlm update --predict')} or {code('--replay auto')}: the loss law fitted "
        "to the parent's logged curve and a probe; docs/prediction.md), against the run's own final held-out loss, measured "
        "with the probe's evaluator.", "caption")


def _bits_per_byte(data: ReportData, order: list[str], corpora: list[str]) -> str:
    """The table of what `renewlm eval` measured per byte, where it did."""
    measured = {v: {c: e["bits_per_byte"] for c, e in (data.evaluations[v].get("heldout") or {}).items()
                    if isinstance(e, dict) and isinstance(e.get("bits_per_byte"), float)} for v in order}
    if not any(measured.values()):
        return ""
    rows = [[v, *(f"{measured[v][c]:.3f}" if c in measured[v] else "–" for c in corpora)] for v in order]
    return table(["version", *(f"{c} bits/byte" for c in corpora)], rows, numeric=set(range(1, len(corpora) + 1))) + paragraph(
        f"Bits per byte: the loss per UTF-8 byte of held-out text ({code('renewlm eval')}), which compares versions "
        "with different tokenizers where the loss per token does not.", "caption")


def _metric(task: str, numbers: dict, spec) -> str | None:
    wanted = spec.tasks[task].metric if task in spec.tasks else None
    if wanted in numbers:
        return wanted
    return next((k for k, x in numbers.items() if k not in SKIP_FIELDS and not k.endswith("_stderr")
                 and isinstance(x, (int, float))), None)


def tasks_section(data: ReportData) -> str:
    spec = load_spec()
    order = graph_order(data.under, data.versions)
    evaluated = {v: data.evaluations[v].get("tasks") or {} for v in order}
    during = {v: (data.versions[v].evaluations or {}).get("lm_eval") or {} for v in order}
    out = ""
    if any(evaluated.values()):
        tasks = list(dict.fromkeys(t for v in order for t in evaluated[v]))
        metric = {t: next((m for v in order if t in evaluated[v] and (m := _metric(t, evaluated[v][t], spec))), None) for t in tasks}
        rows, averages = [], {}
        for v in order:
            if not evaluated[v]:
                continue
            core = data.evaluations[v].get("core_average") or {}
            if isinstance(core.get("core_average"), (int, float)):
                averages[v] = core["core_average"]
            cells = [f"{evaluated[v][t][metric[t]]:.4g}" if t in evaluated[v] and metric[t] in evaluated[v][t] else "–" for t in tasks]
            rows.append([v, *cells, "–" if v not in averages else f"{averages[v]:.3f}"])
        out += table(["version", *(f"{t} ({metric[t]})" for t in tasks), "core average"], rows, numeric=set(range(1, len(tasks) + 2)))
        out += paragraph("From evaluations.json. The core average rescales each task by its random baseline, averages "
                         "within categories, then across them (0 = chance, 1 = perfect; see docs/evaluation.md).", "caption")
        if averages:
            out += figure(figures.core_average_bars(averages), "core average per version")
    if any(during.values()):
        keys = list(dict.fromkeys(k for v in order for k in during[v] if not k.endswith("_stderr")))
        rows = [[v, *(f"{during[v][k]:.4g}" if isinstance(during[v].get(k), (int, float)) else "–" for k in keys)]
                for v in order if during[v]]
        out += "<h3>At the end of training (the run's lm-eval evaluator)</h3>"
        out += table(["version", *keys], rows, numeric=set(range(1, len(keys) + 1)))
    return out or empty(f"No downstream results yet: {code('renewlm eval V... --tasks hellaswag arc_easy')} runs "
                        f"lm-eval tasks and the core average ({code(EVAL_INSTALL)} first), or add "
                        f"an {code('lm_eval')} evaluator to a run's {code('evaluations')}.")
