"""The report: one self-contained HTML file (images inline, no network) built from the store's records
and metrics only: the version graph, training and forgetting curves per run, the versions × corpora
held-out matrix, lm-eval results, sweeps, and the ledger against retraining with `plan`'s chart."""

from renewlm.report.build import SECTIONS, build_report, write_report

__all__ = ["SECTIONS", "build_report", "write_report"]
