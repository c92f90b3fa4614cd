"""A version's prediction (made before it trained: `update --predict`, `--replay auto`) beside what was measured."""

from __future__ import annotations

from renewlm.versions.record import PredictionRecord


def predicted_pairs(prediction: PredictionRecord | None, measured: dict[str, float]) -> list[tuple[str, float, float]]:
    """(corpus, predicted, measured) for each corpus both have, in the order of the prediction."""
    heldout = prediction.heldout if prediction is not None else {}
    return [(c, p, float(measured[c])) for c, p in heldout.items() if isinstance(measured.get(c), (int, float))]


def predicted_text(prediction: PredictionRecord | None, measured: dict[str, float]) -> str:
    """`code predicted 5.310, measured 5.290; prose ...`, or '' where nothing predicted was measured."""
    return "; ".join(f"{c} predicted {p:.3f}, measured {m:.3f}" for c, p, m in predicted_pairs(prediction, measured))
