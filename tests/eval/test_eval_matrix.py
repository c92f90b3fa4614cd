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
    assert any("parent v1" in n for n in s["v2"]["notes"])
    # with only the root as an earlier version, forgetting is measured against it
    s = summarize({"base": LOSSES["base"], "v2": LOSSES["v2"]}, LINEAGES)
    assert s["v2"]["forgetting_by_corpus"] == pytest.approx({"web": 0.5, "med": -0.6})


def test_a_soup_is_compared_with_its_best_parent():
    losses = {"a": {"x": 2.0, "y": 3.0}, "b": {"x": 2.5, "y": 2.0}, "s": {"x": 2.2, "y": 2.1}}
    lineages = {"s": lineage_of(["x", "y"], ["a", "b"], ["a", "b"], ["x", "y"])}
    assert summarize(losses, lineages)["s"]["adaptation"] == pytest.approx(((2.0 - 2.2) + (2.0 - 2.1)) / 2)
