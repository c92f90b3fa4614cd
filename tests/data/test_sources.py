"""Input readers: which files a folder holds, JSON lines cut into chunks, invalid UTF-8 in every format."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from renewlm.data import sources
from renewlm.data.sources import expand, unit_texts, units
from renewlm.errors import InputError


def texts_of(path, text_field="text", split_blank_lines=False):
    counter = [0]
    out = [t for u in units(path, text_field, split_blank_lines) for t in unit_texts(u, text_field, counter)]
    return out, counter[0]


def test_folders_are_read_recursively_in_path_order_skipping_other_files(tmp_path):
    import datasets

    (tmp_path / "b.jsonl").write_text('{"text": "b"}\n')
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "z.txt").write_text("z")
    (tmp_path / "a" / "y.csv.gz").write_bytes(gzip.compress(b"text\ny\n"))
    (tmp_path / "notes.md").write_text("not input")
    (tmp_path / ".hidden.jsonl").write_text('{"text": "hidden"}\n')
    (tmp_path / "a" / "empty.txt").write_text("")  # a source tree's empty __init__.py, say: skipped, not fatal
    datasets.Dataset.from_dict({"text": ["saved"]}).save_to_disk(str(tmp_path / "c-saved"))  # holds .json files
    paths, skipped, outside = expand([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["a/y.csv.gz", "a/z.txt", "b.jsonl", "c-saved"]
    assert skipped == 2 and outside == 0
    assert [texts_of(p)[0] for p in paths] == [["y"], ["z"], ["b"], ["saved"]]


def test_links_leading_out_of_an_input_folder_are_skipped_and_counted(tmp_path):
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (folder / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not for the corpus")
    (elsewhere / "more.jsonl").write_text('{"text": "nor this"}\n')
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "secret.txt").symlink_to(elsewhere / "secret.txt")
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "sub" / "again.txt").symlink_to(folder / "a.txt")  # a link within the folder is read
    paths, skipped, outside = expand([folder])
    assert [p.relative_to(folder).as_posix() for p in paths] == ["a.txt", "sub/again.txt"]
    assert (skipped, outside) == (0, 2)
    assert expand([folder / "sub" / "secret.txt"])[0] == [folder / "sub" / "secret.txt"]  # named itself: the user's choice


def test_paths_that_cannot_be_read(tmp_path):
    with pytest.raises(InputError, match="no input given"):
        expand([])
    with pytest.raises(InputError, match="does not exist"):
        expand([tmp_path / "missing.jsonl"])
    (tmp_path / "data.xml").write_text("<a/>")
    with pytest.raises(InputError, match="unknown format"):
        expand([tmp_path / "data.xml"])
    with pytest.raises(InputError, match="no readable input files"):
        expand([tmp_path])


def test_json_lines_are_cut_on_line_boundaries_and_keep_their_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 64)
    texts = [f"document {i} " + "x" * (i * 7 % 90) for i in range(50)]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" + ("\n" if i % 9 == 0 else "") for i, t in enumerate(texts)))
    chunks = list(units(path, "text", False))
    assert len(chunks) > 10 and all(u.lines.endswith(b"\n") for u in chunks)
    assert texts_of(path) == (texts, 0)
    lines = path.read_text().split("\n")
    for u in chunks:  # each chunk knows the line it starts at
        assert u.lines.decode().split("\n")[0] == lines[u.first_line - 1]
    assert lines[45]
    lines[45] = '{"body": "no text here", "id": 7}'
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match="line 46 has no field 'text' \\(it has: body, id\\)"):
        texts_of(path)


def test_the_last_line_needs_no_newline_and_a_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "one"}\n{"text": "two"}')
    assert texts_of(path) == (["one", "two"], 0)


def test_a_json_array_is_read_whole(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b'[{"text": "one"}, {"text": "t\xffo"}, {"text": null}]')
    assert texts_of(path) == (["one", "t\ufffdo", ""], 1)
    path.write_text('[{"text": "one"}, {"content": "two"}]')
    with pytest.raises(InputError, match="record 2 has no field 'text' \\(it has: content\\)"):
        texts_of(path)


def test_invalid_utf8_is_replaced_and_counted_in_every_format(tmp_path):
    bad = b"caf\xe9 \xff"  # latin-1 bytes: two invalid sequences
    (tmp_path / "a.jsonl").write_bytes(b'{"text": "' + bad + b'"}\n')
    (tmp_path / "a.csv").write_bytes(b"id,text\n1," + bad + b"\n")
    (tmp_path / "a.txt").write_bytes(bad)
    (tmp_path / "b.txt").write_bytes(b"ok\n\n" + bad + b"\n")
    pq.write_table(pa.table({"text": pa.array([bad], pa.binary())}), tmp_path / "a.parquet")
    want = "caf\ufffd \ufffd"
    assert texts_of(tmp_path / "a.jsonl") == ([want], 2)
    assert texts_of(tmp_path / "a.csv") == ([want], 2)
    assert texts_of(tmp_path / "a.txt") == ([want], 2)
    assert texts_of(tmp_path / "b.txt", split_blank_lines=True) == (["ok", want], 2)
    assert texts_of(tmp_path / "a.parquet") == ([want], 2)


def test_csv_and_parquet_errors_say_which_file_and_what_to_do(tmp_path):
    (tmp_path / "a.csv").write_text("text,id\n" + "".join(f"row {i},{i}\n" for i in range(50)) + '"unterminated,5\nmore,6\n')
    with pytest.raises(InputError, match="a.csv .*CSV.*quoting") as e:
        texts_of(tmp_path / "a.csv")
    assert "\n" not in str(e.value)
    (tmp_path / "b.csv").write_text("body,id\nx,1\n")
    with pytest.raises(InputError, match="no field 'text' \\(it has: body, id\\)"):
        texts_of(tmp_path / "b.csv")
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match="column 'text' holds int64, not text"):
        texts_of(tmp_path / "n.parquet")
    pq.write_table(pa.table({"text": ["a"] * 100}), tmp_path / "t.parquet")
    (tmp_path / "cut.parquet").write_bytes((tmp_path / "t.parquet").read_bytes()[:-30])
    with pytest.raises(InputError, match="not a readable parquet file"):
        texts_of(tmp_path / "cut.parquet")


def test_records_that_are_not_objects_or_not_text(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('["a list"]\n')
    with pytest.raises(InputError, match="line 1 is a JSON list, not an object"):
        texts_of(path)
    path.write_text('{"text": {"nested": 1}}\n')
    with pytest.raises(InputError, match="line 1: field 'text' is a dict, not text"):
        texts_of(path)
