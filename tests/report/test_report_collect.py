"""What the report reads: versions, runs, sweeps, final losses; the graph layout; the stability gap."""

import itertools
import json

import pytest

from renewlm.errors import StoreError
from renewlm.report.collect import collect, final_losses, thin
from renewlm.report.figures import stability_gap
from renewlm.report.graph import graph_order, lanes, version_graph_svg
from renewlm.store import Store
from renewlm.examples.synthetic import write_record


def test_an_empty_store_is_refused_with_what_to_run_first(tmp_path):
    with pytest.raises(StoreError, match="holds no versions yet.*renewlm demo"):
        collect(Store(tmp_path / "nothing"))


def test_unknown_versions_are_named(synthetic):
    with pytest.raises(StoreError, match=r"'nope'.*it has: base"):
        collect(synthetic, ["r1", "nope"])


def test_versions_narrow_runs_and_sweeps(synthetic):
    whole = collect(synthetic)
    assert {r.name for r in whole.runs} == {"base", "r1", "r1-trunk", "r2", "r2-trunk", "r3", "r3-trunk", "r1-more"}
    assert [s.name for s in whole.sweeps] == ["pick-data"]
    some = collect(synthetic, ["r2", "r3"])
    assert list(some.versions) == ["r2", "r3"] and {r.name for r in some.runs} == {"r2", "r3"}
    assert some.sweeps == []  # the sweep started from base, which is not asked for
    assert collect(synthetic, ["base"]).sweeps[0].record["parent"] == "base"


def test_a_sweep_without_or_with_a_broken_record_becomes_a_note(synthetic):
    (synthetic.root / "sweeps" / "running").mkdir()
    broken = synthetic.root / "sweeps" / "torn"
    broken.mkdir()
    (broken / "sweep.json").write_text('{"name": "torn", "corp')
    sweeps = {s.name: s for s in collect(synthetic).sweeps}
    assert sweeps["running"].record is None and "no sweep.json yet" in sweeps["running"].problem
    assert sweeps["torn"].record is None and "cannot be read" in sweeps["torn"].problem


def test_thin_keeps_an_even_stride_and_the_last_record():
    records = [{"step": i} for i in range(10_001)]
    kept = thin(records, 1000)
    assert len(kept) <= 1001 and kept[0]["step"] == 0 and kept[-1]["step"] == 10_000
    assert {b["step"] - a["step"] for a, b in itertools.pairwise(kept[:-1])} == {11}
    assert thin(records[:5], 1000) == records[:5]


def test_evaluated_losses_come_before_the_runs_own(synthetic):
    data = collect(synthetic)
    losses, from_record, corpora = final_losses(data)
    evaluated = json.loads((synthetic.root / "versions" / "r1" / "evaluations.json").read_text())["heldout"]
    assert losses["r1"]["c0"] == evaluated["c0"]["loss"] and "c0" not in from_record["r1"]
    assert losses["r2"]["c2"] == data.versions["r2"].losses["c2"] and "c2" in from_record["r2"]  # never evaluated
    assert "soup" in losses and "imported" not in losses  # an import records no loss
    assert corpora[:2] == ["c0", "c1"]


def test_a_switch_series_reads_down_the_page_with_trunks_beside_their_releases(synthetic):
    data = collect(synthetic)
    order = graph_order(data.under, data.versions)
    assert order[:7] == ["base", "r1-trunk", "r1", "r2-trunk", "r2", "r3-trunk", "r3"]
    row = {n: i for i, n in enumerate(order)}
    for name, meta in data.versions.items():
        if meta.kind != "soup":  # a soup sits under its first parent; its second may come later
            assert all(row[p] < row[name] for p in meta.parent_names), name
    lane = lanes(data.under, data.versions)
    assert {lane[f"r{i}"] for i in (1, 2, 3)} == {lane["base"]} == {0}
    assert {lane[f"r{i}-trunk"] for i in (1, 2, 3)} == {1}
    assert lane["r1-more"] not in (0, 1) and lane["r1-more"] % 2 == 0  # a second branch off r1: a new column
    svg = version_graph_svg(data.versions, data.under)
    assert svg.count("<g class=\"node trunk\" opacity=\"0.5\">") == 3 and svg.count("<polygon") == 1  # the soup
    # an edge per parent: seven versions with one parent each, two for the soup
    assert svg.count("<path") == 7 + 2


def test_a_version_from_a_folder_and_a_name_to_escape(tmp_path):
    store = Store(tmp_path / "s")
    record = write_record(store, "a<b", kind="import", parents=[{"name": "/models/x", "weight": 1.0}])
    svg = version_graph_svg({"a<b": record}, {"a<b": None})
    assert "a&lt;b" in svg and "from /models/x" in svg and "a<b" not in svg


@pytest.mark.parametrize("losses, expected", [
    ([5.3, 5.6, 5.5, 5.4], (1, 0.3)),  # rises, then wins back two thirds: a gap
    ([5.3, 5.6, 5.59, 5.6], None),  # rises and stays: forgetting, not a gap
    ([5.9, 5.7, 5.6, 5.5], None),  # falls throughout: learning
    ([5.3, 5.6], None),  # too short to tell
])
def test_stability_gap(losses, expected):
    gap = stability_gap([(i, x) for i, x in enumerate(losses)])
    assert gap == expected if expected is None else gap == (expected[0], pytest.approx(expected[1]))
