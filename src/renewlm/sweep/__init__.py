"""Sweeps (the Databricks recipe, recipes.md §4): an LR grid and a WSD duration sweep per candidate corpus,
the noise over data-order seeds, which evaluations each corpus helps or hurts, and a suggested mixture."""

from renewlm.sweep.plan import SweepSettings, check_settings
from renewlm.sweep.record import read_record
from renewlm.sweep.run import collect, emit, resolve_settings, run_sweep

__all__ = ["SweepSettings", "check_settings", "collect", "emit", "read_record", "resolve_settings", "run_sweep"]
