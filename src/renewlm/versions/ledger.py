"""The ledger: what each version cost, and what retraining from scratch would have cost instead.

- own: the tokens, FLOPs and seconds of the run that wrote the version (an import: what it records
  of its pre-training; a soup: nothing).
- cumulative: the sum over the version and its ancestors, each counted once, so a trunk shared by
  many releases is paid once (Wang et al. 2024's path switching).
- retrain: a run from scratch on all the data the version has seen, once: the FLOPs per token of its
  architecture × its data tokens (tokens of corpora that each run's lineage had not trained on;
  replayed data and a release's decay re-read data already counted).
- series: the releases in the version's history (release ancestors, every release branched off a
  trunk ancestor, and the version itself; a trunk, never released, has none; a soup that is a copy of
  one version, all its weight on it, and a run's EMA version take that version's place); what producing all of them cost (each run once) against
  retraining each of them from scratch, the comparison of Wang et al. (four versions of path
  switching ≈ 58% of retraining, recipes.md §3).
"""

from __future__ import annotations

from renewlm.store import Store
from renewlm.versions.lineage import lineage
from renewlm.versions.folders import list_versions, read_version
from renewlm.versions.record import VersionRecord


def data_tokens(meta: VersionRecord) -> int:
    """New data a version's own run read; records without the field count all their tokens."""
    return meta.tokens if meta.data_tokens is None else meta.data_tokens


def _flops_per_token(chain: list[VersionRecord]) -> float | None:
    """FLOPs per token of the version's architecture, from the newest record in its lineage that ran."""
    for meta in reversed(chain):
        if meta.tokens and meta.flops:  # training's alone: a sampled replay's FLOPs are not per trained token
            return (meta.flops - meta.generation_flops) / meta.tokens
    return None


def _sum(metas, key: str) -> float:
    return sum(getattr(m, key) or 0 for m in metas)


def copy_of(meta: VersionRecord) -> str | None:
    """The version a soup's weights equal (linear or slerp with all the weight on one parent: α = 1), or the run
    version whose moving average an EMA version is (another form of the same release, not a second one), or None."""
    if meta.ema is not None and meta.parents:
        return meta.parents[0].name
    if meta.kind != "soup" or (meta.method or "linear") not in ("linear", "slerp"):
        return None
    weighted = [p for p in meta.parents if p.weight]
    return weighted[0].name if len(weighted) == 1 and weighted[0].weight == 1 else None


def _series(metas: dict[str, VersionRecord], name: str, chain: list[VersionRecord]) -> list[str]:
    """The releases of the version's history in order: each release ancestor, and after each trunk
    ancestor the releases branched off it; the version itself last, in the place of the version it
    copies if it is a copy (it adds no release to the series)."""
    branched: dict[str, list[str]] = {}
    for meta in metas.values():
        if meta.trunk:
            branched.setdefault(meta.trunk, []).append(meta.name)
    series: list[str] = []
    for meta in chain:
        if meta.kind == "trunk":
            series += sorted(branched.get(meta.name, []))
        elif meta.kind != "soup":
            series.append(meta.name)
    copied = copy_of(metas[name])
    return list(dict.fromkeys([*(s for s in series if s != copied), name]))


def cost(store: Store, name: str, metas: dict[str, VersionRecord] | None = None) -> dict:
    """Own, cumulative, retrain and series figures of version `name` (FLOPs; None where unknown).

    `metas` (every record by name, as `list_versions` reads them) saves re-reading the store when
    costing many versions (`renewlm versions`, the report)."""
    if metas is None:
        read_version(store, name)  # an unknown name: one sentence listing what exists
        metas = {m.name: m for m in list_versions(store)}
    chain = lineage(store, name, metas)
    own = metas[name]
    per_token = _flops_per_token(chain)
    retrain = per_token * _sum_data(chain) if per_token else None
    series = _series(metas, name, chain) if own.kind != "trunk" else []
    spent: dict[str, VersionRecord] = {}
    retrain_each = 0.0
    for release in series:
        release_chain = chain if release == name else lineage(store, release, metas)
        spent.update({m.name: m for m in release_chain})
        retrain_each += (per_token or 0.0) * _sum_data(release_chain)
    series_flops = _sum(spent.values(), "flops")
    return {
        "lineage": [m.name for m in chain],
        "tokens": own.tokens,
        "flops": own.flops,
        "seconds": own.seconds,
        "cumulative_tokens": int(_sum(chain, "tokens")),
        "cumulative_flops": _sum(chain, "flops"),
        "cumulative_seconds": _sum(chain, "seconds"),
        "data_tokens": _sum_data(chain),
        "retrain_flops": retrain,
        "series": series,
        "series_flops": series_flops,
        "series_retrain_flops": retrain_each if per_token else None,
        "series_ratio": series_flops / retrain_each if per_token and retrain_each and series else None,
    }


def _sum_data(chain: list[VersionRecord]) -> int:
    return sum(data_tokens(m) for m in chain)
