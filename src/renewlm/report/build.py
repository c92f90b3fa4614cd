"""`build_report`: the whole HTML document of a store; `write_report`: it, written through a rename."""

from __future__ import annotations

import os
import time
from html import escape
from pathlib import Path

from renewlm import __version__
from renewlm.errors import ConfigError
from renewlm.report.collect import collect
from renewlm.report.html import page, paragraph
from renewlm.report.ledger import ledger_section
from renewlm.report.sections import (
    heldout_section,
    runs_section,
    tasks_section,
    versions_section,
)
from renewlm.report.sweeps import sweeps_section
from renewlm.store import Store, check_output

# (section id, heading, builder): the page's order, and the ids tests and links rely on.
SECTIONS = (
    ("versions", "Version graph", versions_section),
    ("runs", "Runs: training and forgetting curves", runs_section),
    ("heldout", "Held-out loss: versions × corpora", heldout_section),
    ("tasks", "Downstream tasks (lm-eval)", tasks_section),
    ("sweeps", "Sweeps", sweeps_section),
    ("ledger", "Ledger against retraining", ledger_section),
)


def build_report(store: Store, versions: list[str] | None = None) -> str:
    """The report of `store` (or of `versions` only) as one self-contained HTML document."""
    data = collect(store, versions)
    sections = [(sid, heading, build(data)) for sid, heading, build in SECTIONS]
    shown = f"{len(data.versions)} version{'s' * (len(data.versions) != 1)}"
    if versions:
        shown += " (" + ", ".join(data.versions) + ")"
    intro = paragraph(
        f"Store {escape(str(store.root))}: {shown}, {len(data.runs)} run{'s' * (len(data.runs) != 1)} with metrics, "
        f"{len(data.sweeps)} sweep{'s' * (len(data.sweeps) != 1)}. Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"by renewlm {escape(__version__)} from records and metrics only.",
        "meta",
    )
    return page("renewlm report", intro, sections)


def write_report(store: Store, out: str | os.PathLike, versions: list[str] | None = None) -> Path:
    """Build the report and write it to `out` (.html) through a temporary file and a rename."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {out} is not an .html file; name the report e.g. report.html")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as {out / 'report.html'}")
    check_output(out, "--out")
    document = build_report(store, versions)  # every check and read before anything is written
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}-{os.getpid()}")
    try:
        tmp.write_text(document, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
