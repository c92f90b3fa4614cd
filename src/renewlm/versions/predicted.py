"""A version's prediction (made before it trained: `update --predict`, `--replay auto`) beside what was measured."""

from __future__ import annotations


def predicted_pairs(prediction: dict | None, measured: dict[str, float]) -> list[tuple[str, float, float]]:
    """(corpus, predicted, measured) for each corpus both have, in the order of the prediction."""
    heldout = (prediction or {}).get("heldout") or {}
    return [(c, float(p), float(measured[c])) for c, p in heldout.items() if isinstance(measured.get(c), (int, float))]


def predicted_text(prediction: dict | None, measured: dict[str, float]) -> str:
    """`code predicted 5.310, measured 5.290; prose ...`, or '' where nothing predicted was measured."""
    return "; ".join(f"{c} predicted {p:.3f}, measured {m:.3f}" for c, p, m in predicted_pairs(prediction, measured))
