"""Lineage and the ledger on a graph of versions: two branches off a shared trunk and a soup."""

import json

import pytest

from renewlm.store import Store
from renewlm.versions import cost, lineage, lineage_corpora, lineage_corpus_tokens, lineage_new_data, read_version
from renewlm.versions.lineage import display_parent


def _record(store: Store, name: str, **fields) -> None:
    folder = store.path("versions", name)
    folder.mkdir(parents=True)
    meta = {"name": name, "kind": "release", "corpora": [], "tokens": 0, "flops": 0.0, **fields}
    (folder / "version.json").write_text(json.dumps(meta))


def _run(name, parent=None, *, kind="release", corpora=None, tokens=0, data=None, trunk=None, **extra):
    corpus_tokens = corpora or {}
    return dict(
        name=name, kind=kind, parents=[{"name": parent, "weight": 1.0}] if parent else [], corpora=list(corpus_tokens),
        corpus_tokens=corpus_tokens, tokens=tokens, flops=2.0 * tokens, data_tokens=tokens if data is None else data,
        trunk=trunk, **extra,
    )


@pytest.fixture
def graph(tmp_path):
    """base (pretrain on a, 100) → t2 (trunk on b, 100) → r2 (branch, 10)
                                 → t3 (trunk on c, 100) → r3 (branch, 10)
    soup of r2 and r3 (weights 0.5/0.5); old-style record `legacy` with a single `parent`."""
    store = Store(tmp_path / "store")
    for meta in (
        _run("base", corpora={"a": 100}, tokens=100, kind="pretrain"),
        _run("t2", "base", kind="trunk", corpora={"b": 90, "a": 10}, tokens=100, data=90),
        _run("r2", "t2", corpora={"b": 9, "a": 1}, tokens=10, data=0, trunk="t2"),
        _run("t3", "t2", kind="trunk", corpora={"c": 90, "a": 5, "b": 5}, tokens=100, data=90),
        _run("r3", "t3", corpora={"c": 9, "a": 1}, tokens=10, data=0, trunk="t3"),
    ):
        _record(store, **meta)
    _record(store, "soup", kind="soup", parents=[{"name": "r2", "weight": 0.5}, {"name": "r3", "weight": 0.5}])
    _record(store, "legacy", parent="base", corpora=["d"], tokens=50, flops=100.0)
    return store


def test_lineage_follows_every_parent_once_parents_first(graph):
    names = [m.name for m in lineage(graph, "soup")]
    assert sorted(names) == ["base", "r2", "r3", "soup", "t2", "t3"] and len(names) == 6  # t2 and base once
    for meta in lineage(graph, "soup"):
        for parent in meta.parent_names:
            assert names.index(parent) < names.index(meta.name)
    assert [m.name for m in lineage(graph, "legacy")] == ["base", "legacy"]  # a record with `parent`
    assert lineage_corpora(graph, "soup") == ["a", "b", "c"]
    assert lineage_corpus_tokens(graph, "r3") == {"a": 116, "b": 95, "c": 99}
    # New data only: each corpus where it was first read (a's replay and the branches' re-reads left out),
    # which sums to the ledger's data tokens.
    assert lineage_new_data(lineage(graph, "r3")) == {"a": 100, "b": 90, "c": 90}
    assert sum(lineage_new_data(lineage(graph, "r3")).values()) == cost(graph, "r3")["data_tokens"]


def test_ledger_counts_a_shared_trunk_once_and_sets_the_series_against_retraining(graph):
    r3 = cost(graph, "r3")
    assert r3["lineage"] == ["base", "t2", "t3", "r3"]
    assert r3["cumulative_tokens"] == 100 + 100 + 100 + 10 and r3["cumulative_flops"] == 2.0 * 310
    # Data seen: a (100) + b (90) + c (90); 2 FLOPs per token.
    assert r3["data_tokens"] == 280 and r3["retrain_flops"] == 560.0
    # The series: base, r2 (branched off trunk t2), r3. Spent: base + t2 + r2 + t3 + r3, t2 once.
    assert r3["series"] == ["base", "r2", "r3"]
    assert r3["series_flops"] == 2.0 * (100 + 100 + 10 + 100 + 10)
    # Retraining each: base on 100, r2 on 190, r3 on 280 tokens of data.
    assert r3["series_retrain_flops"] == 2.0 * (100 + 190 + 280)
    assert r3["series_ratio"] == pytest.approx(640 / 1140)
    soup = cost(graph, "soup")
    assert soup["flops"] == 0.0 and soup["cumulative_flops"] == 2.0 * 320  # every run under it, each once


def test_a_soup_that_copies_one_version_takes_its_place_in_the_series(graph):
    # --base base --weights 1 (α = 1) keeps r3 alone: the record lists r3 with weight 1, the base dropped.
    _record(graph, "copy", kind="soup", method="linear", parents=[{"name": "r3", "weight": 1.0}])
    _record(graph, "t1", kind="soup", method="slerp", parents=[{"name": "r3", "weight": 1.0}, {"name": "base", "weight": 0.0}])
    _record(graph, "half", kind="soup", method="linear", parents=[{"name": "r3", "weight": 0.5}, {"name": "base", "weight": 0.5}])
    r3 = cost(graph, "r3")
    for name in ("copy", "t1"):
        c = cost(graph, name)
        assert c["series"] == ["base", "r2", name]  # three releases, as for r3 itself, not four
        assert (c["series_flops"], c["series_retrain_flops"], c["series_ratio"]) == (
            r3["series_flops"], r3["series_retrain_flops"], r3["series_ratio"])
    assert cost(graph, "half")["series"] == ["base", "r2", "r3", "half"]  # a real average is a release of its own


def test_the_tree_shows_releases_in_series_with_trunks_under_them(graph):
    metas = {m: read_version(graph, m) for m in graph.names("versions")}
    under = {name: display_parent(meta, metas) for name, meta in metas.items()}
    assert under == {"base": None, "t2": "r2", "r2": "base", "t3": "r3", "r3": "r2", "soup": "r2", "legacy": "base"}


def test_a_sampled_replay_costs_its_update_but_not_the_flops_per_token_of_retraining(tmp_path):
    store = Store(tmp_path / "store")
    _record(store, **_run("base", corpora={"a": 100}, tokens=100, kind="pretrain"))
    sampled = _run("gen", "base", corpora={"b": 9, "base.replay-x": 1}, tokens=10, data=9)
    _record(store, **{**sampled, "flops": 20.0 + 7.0, "generation_flops": 7.0})
    gen = cost(store, "gen")
    assert (gen["flops"], gen["cumulative_flops"]) == (27.0, 227.0)  # the sampling is part of what the update cost
    assert gen["retrain_flops"] == 2.0 * 109  # at the 2 FLOPs per trained token of its training alone
