"""The version record: one typed model, its docs table, and records written before it."""

import json
import shutil
from pathlib import Path

import pytest

from renewlm.errors import CorruptError
from renewlm.store import Store
from renewlm.versions import build_record, cost, lineage, read_version, write_record
from renewlm.versions.record import field_table, migrate, schedule_lrs

DATA = Path(__file__).parent / "data"
DOCS = Path(__file__).parents[2] / "docs" / "versions.md"


def test_the_docs_table_is_the_models_field_docs():
    text = DOCS.read_text()
    start, end = "<!-- version fields: start -->\n", "\n<!-- version fields: end -->"
    table = text[text.index(start) + len(start):text.index(end)]
    assert table == field_table(), (
        "docs/versions.md's table of version.json differs from VersionRecord's field docstrings; paste in "
        '`python -c "from renewlm.versions.record import field_table; print(field_table())"`'
    )
    assert "| `peak_lr` |" in table and "| `name` |" in table


def _store_with(tmp_path, *records: dict) -> Store:
    store = Store(tmp_path / "store")
    for record in records:
        folder = store.root / "versions" / record["name"]
        folder.mkdir(parents=True)
        (folder / "version.json").write_text(json.dumps(record))
    return store


def test_a_record_written_before_the_typed_record_still_loads(tmp_path):
    old = json.loads((DATA / "release-before-typed-record.json").read_text())
    store = _store_with(tmp_path, {"name": "v1", "kind": "pretrain", "tokens": 1000, "flops": 5.0, "corpora": ["web-2025"]})
    (store.root / "versions" / "v2").mkdir()
    shutil.copyfile(DATA / "release-before-typed-record.json", store.root / "versions" / "v2" / "version.json")
    meta = read_version(store, "v2")
    assert meta.parent_names == ["v1"] and meta.kind == "release" and meta.paradigm == "continue"
    assert (meta.peak_lr, meta.final_lr) == (3e-4, 0.1 * 3e-4)  # a cosine's default floor, 0.1·peak
    assert meta.tokens == 163840 and isinstance(meta.tokens, int) and meta.corpus_tokens == {"news-2026-10": 155648, "web-2025": 8192}
    assert meta.resumed_at_steps == [20] and meta.seq_len == 256
    assert meta.model_extra == {"written_by_a_later_renewlm": {"kept": True}}  # a field it does not list is kept
    assert [m.name for m in lineage(store, "v2")] == ["v1", "v2"] and cost(store, "v2")["cumulative_tokens"] == 1000 + 163840
    assert json.loads((store.root / "versions" / "v2" / "version.json").read_text()) == old  # read, never rewritten


def test_a_record_with_a_single_parent_migrates_to_parents():
    assert migrate({"name": "b", "parent": "a"})["parents"] == [{"name": "a", "weight": 1.0}]
    assert migrate({"name": "a", "parent": None})["parents"] == []
    assert build_record({"name": "b", "parent": "a"}).parent_names == ["a"]


@pytest.mark.parametrize("schedule, lrs", [
    ({"name": "cosine", "peak_lr": 1e-3, "min_lr": None}, (1e-3, 0.1 * 1e-3)),
    ({"name": "cosine", "peak_lr": 1e-3, "min_lr": 2e-5}, (1e-3, 2e-5)),
    ({"name": "wsd", "peak_lr": 1e-3, "min_lr": 0.0}, (1e-3, 0.0)),
    ({"name": "constant", "lr": 5e-5}, (5e-5, 5e-5)),
    ({"name": "branch", "start_lr": 3e-4, "min_lr": 0.0}, (3e-4, 0.0)),
    ({"name": "import", "peak_lr": 3e-3}, (3e-3, None)),
    (None, (None, None)),
])
def test_the_schedules_peak_and_final_lr_are_plain_fields(schedule, lrs):
    assert schedule_lrs(schedule) == lrs
    record = build_record({"name": "v", "schedule": schedule})
    assert (record.peak_lr, record.final_lr) == schedule_lrs(schedule)


def test_what_a_writer_builds_reads_back_the_same(tmp_path):
    record = build_record({"name": "s", "kind": "soup", "parents": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": None, "role": "base"}],
                           "tokens": 0, "schedule": {"name": "constant", "lr": 1e-4}})
    folder = tmp_path / "store" / "versions" / "s"
    folder.mkdir(parents=True)
    write_record(folder, record)
    raw = json.loads((folder / "version.json").read_text())
    assert raw["parents"] == [{"name": "a", "weight": 0.5}, {"name": "b", "weight": None, "role": "base"}]  # no role unless given
    assert read_version(Store(tmp_path / "store"), "s") == record


def test_a_record_that_is_not_an_object_is_one_sentence(tmp_path, cli):
    store = _store_with(tmp_path, {"name": "v1"})
    (store.root / "versions" / "v1" / "version.json").write_text("[1, 2]")
    with pytest.raises(CorruptError, match=r"version.json holds a list, not a version record; .*renewlm rm v1 --force"):
        read_version(store, "v1")
    code, out, err = cli("show", "v1", "--store", store.root)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "renewlm rm v1 --force" in err
