"""Evaluation: held-out loss per corpus, lm-eval tasks, the core average, and the versions × corpora
matrix with its adaptation/forgetting summary. Every evaluator has a name, a cadence and a call that
returns named numbers; the training loop calls a run's evaluators, `renewlm eval` calls them on versions."""

from renewlm.eval.cadence import Cadence, Every, LogSpaced
from renewlm.eval.config import (
    Evaluations,
    EvaluationSpec,
    build_evaluators,
    default_evaluations,
)
from renewlm.eval.evaluator import Evaluator, HeldOut, evaluate_due
from renewlm.eval.heldout import heldout_loss, perplexity

__all__ = [
    "Cadence",
    "EvaluationSpec",
    "Evaluations",
    "Evaluator",
    "Every",
    "HeldOut",
    "LogSpaced",
    "build_evaluators",
    "default_evaluations",
    "evaluate_due",
    "heldout_loss",
    "perplexity",
]
