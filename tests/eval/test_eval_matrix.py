"""Adaptation and forgetting on a synthetic matrix, against hand-computed values."""

import pytest

from renewlm.eval.matrix import Lineage, lineage_of, summarize

# base trained on web; v1 updated on med from base (replaying web); v2 updated on code from v1.
LOSSES = {
    "base": {"web": 3.0, "med": 4.0, "code": 5.0},
    "v1": {"web": 3.2, "med": 3.1, "code": 4.9},
    "v2": {"web": 3.5, "med": 3.4, "code": 3.6},
}
LINEAGES = {
    "base": lineage_of(["web"], [], [], []),
    "v1": lineage_of(["med", "web"], ["base"], ["base"], ["web"]),
    "v2": lineage_of(["code"], ["v1"], ["base", "v1"], ["web", "med"]),
}


def test_updated_on_and_older_corpora():
    assert LINEAGES["v1"] == Lineage(parents=["base"], ancestors=["base"], updated_on=["med"], older=["web"])
    assert LINEAGES["v2"].updated_on == ["code"] and LINEAGES["v2"].older == ["web", "med"]
    # more steps on the same data: its own corpora are what it was updated on
    assert lineage_of(["web"], ["base"], ["base"], ["web"]).updated_on == ["web"]


def test_adaptation_and_forgetting_by_hand():
    s = summarize(LOSSES, LINEAGES)
    assert s["v1"]["adaptation"] == pytest.approx(4.0 - 3.1)  # med: parent base 4.0 → 3.1
    assert s["v1"]["forgetting_by_corpus"] == pytest.approx({"web": 3.2 - 3.0})
    assert s["v2"]["adaptation"] == pytest.approx(4.9 - 3.6)  # code, against v1
    # web: best earlier is base (3.0); med: best earlier is v1 (3.1), not the root
    assert s["v2"]["forgetting_by_corpus"] == pytest.approx({"web": 0.5, "med": 0.3})
    assert s["v2"]["forgetting"] == pytest.approx(0.4)
    assert s["base"]["adaptation"] is None and s["base"]["forgetting"] is None


def test_missing_parent_or_ancestors_are_said_not_guessed():
    s = summarize({"v2": LOSSES["v2"]}, LINEAGES)
    assert s["v2"]["adaptation"] is None and s["v2"]["forgetting"] is None
    assert any("needs v1, the version it was updated from," in n for n in s["v2"]["notes"])
    # with only the root as an earlier version, forgetting is measured against it
    s = summarize({"base": LOSSES["base"], "v2": LOSSES["v2"]}, LINEAGES)
    assert s["v2"]["forgetting_by_corpus"] == pytest.approx({"web": 0.5, "med": -0.6})


def test_a_soup_is_compared_with_its_best_parent():
    losses = {"a": {"x": 2.0, "y": 3.0}, "b": {"x": 2.5, "y": 2.0}, "s": {"x": 2.2, "y": 2.1}}
    lineages = {"s": lineage_of(["x", "y"], ["a", "b"], ["a", "b"], ["x", "y"])}
    assert summarize(losses, lineages)["s"]["adaptation"] == pytest.approx(((2.0 - 2.2) + (2.0 - 2.1)) / 2)


def test_a_switch_release_is_compared_with_the_release_it_was_updated_from(tmp_path):
    from renewlm.eval.compare import version_lineage
    from renewlm.store import Store
    from renewlm.examples.synthetic import write_record

    store = Store(tmp_path / "store")

    def add(name, parent, corpora, **fields):
        write_record(store, name, parents=[{"name": parent, "weight": 1.0}] if parent else [], corpora=corpora, **fields)

    # base on web; two switch updates (med, then code), each a trunk and a release off it, replaying the old data.
    add("base", None, ["web"], kind="pretrain")
    add("s1-trunk", "base", ["med", "web"], kind="trunk")
    add("s1", "s1-trunk", ["med", "web"], trunk="s1-trunk")
    add("s2-trunk", "s1-trunk", ["code", "web", "med"], kind="trunk")
    add("s2", "s2-trunk", ["code", "web", "med"], trunk="s2-trunk")
    add("s2-more", "s2", ["code"])  # a plain continue from a release: compared with its parent, as before
    lineages = {v: version_lineage(store, v) for v in ("base", "s1", "s2", "s2-more")}
    assert lineages["s1"].parents == ["base"] and lineages["s1"].updated_on == ["med"] and lineages["s1"].older == ["web"]
    assert lineages["s2"].parents == ["s1"] and lineages["s2"].updated_on == ["code"]  # replay is not starred
    assert lineages["s2"].older == ["web", "med"] and {"base", "s1", "s1-trunk", "s2-trunk"} == set(lineages["s2"].ancestors)
    assert lineages["s2-more"].parents == ["s2"] and lineages["s2-more"].updated_on == ["code"]
    # The releases alone, as the user lists them: every number is there, against releases only.
    s = summarize({"base": LOSSES["base"], "s1": LOSSES["v1"], "s2": LOSSES["v2"]}, lineages)
    assert s["s1"]["adaptation"] == pytest.approx(4.0 - 3.1) and s["s2"]["adaptation"] == pytest.approx(4.9 - 3.6)
    assert s["s2"]["forgetting_by_corpus"] == pytest.approx({"web": 0.5, "med": 0.3})  # med's best earlier: s1
    assert not s["s1"]["notes"] and not s["s2"]["notes"]
    # A trunk whose parent has no release off it: the release is compared with that trunk.
    add("t2", "s1-trunk", ["code"], kind="trunk")
    add("r2", "t2", ["code"], trunk="t2")
    store.path("versions", "s1").joinpath("version.json").unlink()  # s1 gone: nothing branched off s1-trunk
    assert version_lineage(store, "r2").parents == ["s1-trunk"]
