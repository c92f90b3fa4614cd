"""The sweeps section, from each `sweeps/NAME/sweep.json` (the record `renewlm sweep` writes; its format
is in docs/sweeps.md): per candidate corpus the learning-rate and duration curves, the best point, the
characterization table (which evaluations it helps, hurts or leaves unchanged), then the suggested
mixture and the sweep's cost.

A record is read defensively: a field it lacks leaves its part of the section out rather than
failing the whole report, so a sweep still being collected shows what it has.
"""

from __future__ import annotations

import json
import math
from html import escape

import yaml

from renewlm.report import figures
from renewlm.report.collect import ReportData
from renewlm.report.html import code, empty, figure, paragraph, table

VERDICT_ORDER = {"helps": 0, "hurts": 1, "unchanged": 2}


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def _points(entries, key: str) -> list[tuple[float, float]]:
    return [(e[key], e["loss"]) for e in entries or [] if isinstance(e, dict) and _number(e.get(key)) and _number(e.get("loss"))]


def _value(x) -> str:
    if _number(x):
        return f"{x:,}" if isinstance(x, int) else f"{x:.4g}"
    return x if isinstance(x, str) else json.dumps(x)


def corpus_part(corpus: str, entry: dict) -> str:
    lrs, durations = _points(entry.get("lrs"), "lr"), _points(entry.get("durations"), "tokens")
    repeats = [r["loss"] for r in entry.get("repeats") or [] if isinstance(r, dict) and _number(r.get("loss"))]
    out = f"<h4>{escape(corpus)}</h4>"
    out += figure(figures.sweep_figure(corpus, lrs, entry.get("best_lr"), durations, entry.get("best_tokens"), repeats),
                  f"learning-rate and duration sweeps on {corpus}")
    facts = []
    if _number(entry.get("best_lr")):
        facts.append(f"best LR {entry['best_lr']:.3g}")
    if _number(entry.get("best_tokens")):
        facts.append(f"best duration {entry['best_tokens']:,.0f} tokens")
    if _number(entry.get("spread")):
        facts.append(f"seed spread {entry['spread']:.4f} (a difference smaller than this is reported as unchanged)")
    spent = entry.get("cost")
    if isinstance(spent, dict) and _number(spent.get("tokens")) and _number(spent.get("independent_tokens")):
        facts.append(f"the duration sweep read {spent['tokens']:,.0f} tokens, against {spent['independent_tokens']:,.0f} "
                     "for independent runs of each duration")
    if isinstance(entry.get("in_mixture"), bool):
        facts.append(("in the suggested mixture" if entry["in_mixture"] else "left out of the mixture")
                     + (f": {entry['reason']}" if entry.get("reason") else ""))
    if facts:
        out += paragraph(escape("; ".join(facts)) + ".")
    characterization = entry.get("characterization")
    if isinstance(characterization, dict) and characterization:
        rows = sorted(
            ((name, e) for name, e in characterization.items() if isinstance(e, dict)),
            key=lambda item: (VERDICT_ORDER.get(item[1].get("verdict"), 3), item[0]),
        )

        def number(e: dict, key: str, fmt: str) -> str:
            return format(e[key], fmt) if _number(e.get(key)) else "–"

        out += table(["evaluation", "parent", "best point", "change", "seed spread", "verdict"],
                     [[name, number(e, "parent", ".4f"), number(e, "value", ".4f"), number(e, "delta", "+.4f"),
                       number(e, "spread", ".4f"), e.get("verdict") or "–"] for name, e in rows],
                     numeric={1, 2, 3, 4})
    return out


def sweep_part(name: str, record: dict) -> str:
    out = f'<h3 id="sweep-{escape(name)}">{escape(name)}</h3>'
    progress = record.get("progress")
    done = (f" {progress['done']} of {progress['planned']} points finished."
            if isinstance(progress, dict) and _number(progress.get("done")) and _number(progress.get("planned")) else "")
    if record.get("parent"):
        out += paragraph(f"From version {code(str(record['parent']))}.{escape(done)}")
    settings = record.get("settings")
    if isinstance(settings, dict) and settings:
        out += table(["setting", "value"], [[k, _value(v)] for k, v in settings.items()])
    corpora = record.get("corpora")
    if isinstance(corpora, dict) and corpora:
        out += "".join(corpus_part(c, e) for c, e in corpora.items() if isinstance(e, dict))
    else:
        out += paragraph("No candidate corpus has a finished point yet.", "note")
    mixture = record.get("suggested_mixture")
    if mixture:
        out += "<h4>Suggested mixture</h4>"
        out += paragraph("In the ratio of the best token counts of the corpora that help; ready for "
                         f"{code('renewlm train')} / {code('renewlm update')}.", "caption")
        out += f"<pre>{escape(yaml.safe_dump(mixture, sort_keys=False))}</pre>"
    spent = record.get("cost")
    if isinstance(spent, dict) and spent:
        rows = [[k, f"{v:.0%}" if k == "saving" and _number(v) else _value(v)] for k, v in spent.items()]
        out += "<h4>Cost</h4>" + table(["", "value"], rows, numeric={1})
        out += paragraph("tokens, flops: the duration sweeps as run (one trunk per corpus cut at each duration, a short "
                         "decay off each); independent_*: one run per duration instead; all_*: every point of the sweep.",
                         "caption")
    return out


def sweeps_section(data: ReportData) -> str:
    if not data.sweeps:
        return empty(f"No sweep in the store: {code('renewlm sweep NAME --from V --data C1 C2')} sweeps the learning "
                     "rate and the duration per candidate corpus, tells which evaluations each helps or hurts, and "
                     "suggests a mixture.")
    out = ""
    for sweep in data.sweeps:
        if sweep.record is None:
            out += f"<h3>{escape(sweep.name)}</h3>" + paragraph(escape(sweep.problem or ""), "note")
        else:
            out += sweep_part(sweep.name, sweep.record)
    return out
