"""Which evaluations a corpus helps, hurts or leaves unchanged, and the mixture of the helpful ones.

The Databricks recipe (recipes.md §4): the proxy runs that find a corpus's best LR and duration also
characterize it, by comparing the best point with the parent on every evaluation, and the useful
corpora are mixed in the ratio of their individually best token counts. Here a difference counts
only when it is larger than the spread (max − min) of the best LR's point over its data-order seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from renewlm.data.mixture import validate_mixture
from renewlm.eval.compare import check, evaluate_versions
from renewlm.store import Store
from renewlm.sweep.plan import SweepSettings
from renewlm.versions import lineage_corpus_tokens

HELPS, HURTS, UNCHANGED = "helps", "hurts", "unchanged"
_LOWER_IS_BETTER = ("perplexity", "bits_per_byte", "byte_perplexity", "word_perplexity")


def lower_is_better(evaluation: str) -> bool:
    return evaluation.startswith("heldout/") or any(m in evaluation.split("/")[-1] for m in _LOWER_IS_BETTER)


def flatten(entry: dict) -> dict[str, float]:
    """One version's `renewlm eval` result as `{evaluation: number}`: `heldout/CORPUS` (loss),
    `task/TASK/METRIC`, `core_average`."""
    out = {f"heldout/{c}": e["loss"] for c, e in entry["heldout"].items()}
    for task, numbers in (entry.get("tasks") or {}).items():
        for metric, value in numbers.items():
            if isinstance(value, (int, float)) and not metric.endswith("_stderr") and math.isfinite(value):
                out[f"task/{task}/{metric}"] = float(value)
    if entry.get("core_average"):
        out["core_average"] = entry["core_average"]["core_average"]
    return out


def evaluate(
    store: Store, s: SweepSettings, versions: list[str], cached: dict[str, dict], *, corpora: list[str], seq_len: int,
    say: Callable[[str], None],
) -> dict[str, dict]:
    """Evaluations of `versions`, from `cached` where the record already has them (a re-run evaluates
    nothing twice): held-out loss on `corpora` with the sweep runs' windows, and the lm-eval tasks."""
    missing = [v for v in dict.fromkeys(versions) if v not in cached]
    if missing:
        plan = check(store, missing, corpora=corpora, tasks=s.tasks, include_paths=s.include_paths, limit=s.limit,
                     seq_len=seq_len, eval_tokens=s.eval_tokens)
        result = evaluate_versions(store, plan, say=say)
        cached.update({v: flatten(result["versions"][v]) for v in missing})
    return cached


def verdict(delta: float, spread: float, lower_better: bool) -> str:
    if abs(delta) <= spread:
        return UNCHANGED
    return HELPS if (delta < 0) == lower_better else HURTS


def characterize(parent: dict[str, float], best: dict[str, float], noise: list[dict[str, float]]) -> dict[str, dict]:
    """Per evaluation: the parent's value, the best point's, their difference, the spread over the
    repeated seeds, and the verdict."""
    out = {}
    for name, base in parent.items():
        if name not in best:
            continue
        values = [n[name] for n in noise if name in n]
        spread = max(values) - min(values) if values else 0.0
        delta = best[name] - base
        out[name] = {"parent": base, "value": best[name], "delta": delta, "spread": spread,
                     "verdict": verdict(delta, spread, lower_is_better(name))}
    return out


def mixture_choice(corpus: str, characterization: dict[str, dict], lineage: list[str], target: str | None = None) -> tuple[bool, str]:
    """Whether the corpus joins the suggested mixture, and why (or why not). Without a target it must help its own
    held-out loss and hurt no other corpus of the lineage by more than the spread; with one (the metric the update
    is for, as Databricks choose) it must help the target, and what it hurts of the lineage is said, not disqualifying."""
    aim = target or corpus
    what = f"the target {target}'s held-out loss" if target else "its own held-out loss"
    measured = characterization.get(f"heldout/{aim}")
    if measured is None or measured["verdict"] != HELPS:
        unchanged = measured is not None and measured["verdict"] == UNCHANGED
        return False, f"it leaves {what} unchanged" if unchanged else f"it hurts {what}"
    hurt = [c for c in lineage if c not in (corpus, aim) and (characterization.get(f"heldout/{c}") or {}).get("verdict") == HURTS]
    if target:
        return True, f"it helps {what}" + (f" (and hurts the lineage's held-out loss on {', '.join(hurt)} by more than the spread)" if hurt else "")
    if hurt:
        return False, f"it hurts the lineage's held-out loss on {', '.join(hurt)} by more than the spread"
    return True, f"it helps {what} and hurts no corpus of the lineage by more than the spread"


def suggested_mixture(store: Store, s: SweepSettings, entries: dict[str, dict], lineage: list[str]) -> dict | None:
    """One phase of the helpful corpora weighted by their best token counts (the weights are the counts
    themselves, so the ratio is exact), with the sweep's replay of the lineage's other corpora."""
    chosen = {c: e["best_tokens"] for c, e in entries.items() if e["in_mixture"]}
    if not chosen:
        return None
    data: dict = {"phases": [{"corpora": chosen, "end": 1.0}]}
    if s.replay > 0:
        trained = lineage_corpus_tokens(store, s.parent)
        old = [c for c in lineage if c not in chosen and store.exists("corpora", c)]
        if old:  # by the tokens trained on along the lineage, as `renewlm update --replay` splits it
            weights = {c: trained[c] for c in old} if all(trained.get(c, 0) > 0 for c in old) else dict.fromkeys(old, 1.0)
            data["replay"] = {"fraction": s.replay, "corpora": weights}
    mixture = validate_mixture(data, "suggested mixture").model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in mixture.items() if v != {}}  # no empty max_epochs in a file meant for people
