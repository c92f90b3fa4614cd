"""The versions × corpora matrix of held-out losses, and the continual-learning summary it gives.

For version v with parent p, the corpora it was *updated on* U(v) are the corpora of its own run
that its parent's lineage had not trained on (all of its own corpora when it saw nothing new, e.g.
more steps on the same data); its *older* corpora O(v) are those its parent's lineage trained on,
less U(v). With L(v, c) the held-out loss of v on c:

    adaptation(v)    = mean over c in U(v) of  L(p, c) − L(v, c)                (> 0: it learned the new data)
    forgetting(v, c) = L(v, c) − min over earlier versions e of L(e, c),  c in O(v)  (> 0: it forgot)
    forgetting(v)    = mean over c in O(v) of forgetting(v, c)

"Earlier versions" are v's ancestors in the matrix. Forgetting against the *best* earlier value, not
the parent's, is the forgetting measure of Chaudhry et al. 2018 (Riemannian Walk, §4: "the difference
between the maximum knowledge gained about the task throughout the learning process in the past and
the knowledge we currently have about it"), with a loss in place of an accuracy, so a version is
charged for everything lost along its lineage, not only in its last step. Replay corpora (seen before)
count as older corpora: replay is there to keep them, and this shows whether it did. A version with
several parents (a soup) is compared with its best parent on each corpus. For a release branched off
a trunk (path switching), p is the release it was updated from, not its trunk (eval/compare.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lineage:
    """What the summary needs to know of one version's history."""

    parents: list[str] = field(default_factory=list)
    ancestors: list[str] = field(default_factory=list)  # every earlier version, root first
    updated_on: list[str] = field(default_factory=list)  # U(v)
    older: list[str] = field(default_factory=list)  # O(v)


def lineage_of(own_corpora: list[str], parents: list[str], ancestors: list[str], parent_corpora: list[str]) -> Lineage:
    """U(v) and O(v) from v's own corpora and every corpus its parents' lineage trained on."""
    new = [c for c in own_corpora if c not in parent_corpora]
    updated_on = new or list(own_corpora)
    older = [c for c in parent_corpora if c not in updated_on]
    return Lineage(parents=list(parents), ancestors=list(ancestors), updated_on=updated_on, older=older)


def summarize(losses: dict[str, dict[str, float]], lineages: dict[str, Lineage]) -> dict[str, dict]:
    """For each version of `losses` (version → corpus → loss): adaptation and forgetting as defined
    above, None where the matrix lacks what they need, with a note saying what is missing."""
    return {v: _summary(v, losses, lineages.get(v, Lineage())) for v in losses}


def _summary(v: str, losses: dict[str, dict[str, float]], info: Lineage) -> dict:
    mine = losses[v]
    notes = []
    gains = {}
    parents = [p for p in info.parents if p in losses]
    for c in info.updated_on:
        before = [losses[p][c] for p in parents if c in losses[p]]
        if before and c in mine:
            gains[c] = min(before) - mine[c]
    if info.parents and not parents:
        notes.append(f"adaptation needs {' or '.join(info.parents)}, the version it was updated from, in the matrix")
    earlier = [e for e in info.ancestors if e in losses and e != v]
    forgot = {}
    for c in info.older:
        seen = [losses[e][c] for e in earlier if c in losses[e]]
        if seen and c in mine:
            forgot[c] = mine[c] - min(seen)
    if info.older and not forgot:
        notes.append("forgetting needs an earlier version of its lineage evaluated on its older corpora")
    return {
        "updated_on": info.updated_on,
        "adaptation": _mean(gains),
        "adaptation_by_corpus": gains,
        "forgetting": _mean(forgot),
        "forgetting_by_corpus": forgot,
        "compared_with": {"parents": parents, "earlier": earlier},
        "notes": notes,
    }


def _mean(values: dict[str, float]) -> float | None:
    return sum(values.values()) / len(values) if values else None
