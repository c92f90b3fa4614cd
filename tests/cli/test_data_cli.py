"""Bad input to `renewlm tokenizer train`, `prepare` and `corpora`: one clear sentence, exit 2, nothing left behind."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import prose_texts, write_jsonl


def prepare_args(store, name, *inputs, extra=()):
    args = ["prepare", name]
    for i in inputs:
        args += ["--input", i]
    return [*args, "--tokenizer", "tok", "--store", store.root, *extra]


def assert_refused(cli, store, args, *phrases, name="c"):
    code, out, err = cli(*args)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert "Traceback" not in err
    assert not store.exists("corpora", name)
    corpora = store.root / "corpora"
    assert not corpora.exists() or not [p for p in corpora.iterdir() if p.name.startswith(".tmp-")]
    return lines[0]


def test_prepare_and_list(cli, store, tmp_path):
    code, out, err = cli(*prepare_args(store, "prose", write_jsonl(tmp_path / "p.jsonl", prose_texts()[:20])))
    assert code == 0, err
    assert "corpus prose:" in out
    code, out, _ = cli("corpora", "--store", store.root)
    assert code == 0 and "prose" in out and "p.jsonl" in out


def test_missing_path(cli, store, tmp_path):
    assert_refused(cli, store, prepare_args(store, "c", tmp_path / "nope.jsonl"), "does not exist", "nope.jsonl")


def test_empty_input(cli, store, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    assert_refused(cli, store, prepare_args(store, "c", tmp_path / "empty.jsonl"), "is empty")


def test_no_documents(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "blank.jsonl", ["", "   ", "\n"])
    assert_refused(cli, store, prepare_args(store, "c", path), "no documents")


def test_record_without_the_text_field_names_the_fields_it_has(cli, store, tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"text": "fine"}\n{"body": "x", "id": 2}\n')
    assert_refused(cli, store, prepare_args(store, "c", path), "line 2", "no field 'text'", "body, id", "--text-field")


def test_parquet_column_missing_names_the_columns(cli, store, tmp_path):
    pq.write_table(pa.table({"content": ["a"], "url": ["u"]}), tmp_path / "t.parquet")
    assert_refused(cli, store, prepare_args(store, "c", tmp_path / "t.parquet"), "content, url")


def test_unreadable_parquet(cli, store, tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet at all")
    assert_refused(cli, store, prepare_args(store, "c", tmp_path / "broken.parquet"), "not a readable parquet file")


def test_invalid_json_line(cli, store, tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"text": "ok"}\n{"text": oops}\n')
    assert_refused(cli, store, prepare_args(store, "c", path), "line 2 is not valid JSON")


def test_dataset_dict_asks_for_a_split(cli, store, tmp_path):
    import datasets

    datasets.disable_progress_bars()
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a"]}), "test": datasets.Dataset.from_dict({"text": ["b"]})}).save_to_disk(str(tmp_path / "dd"))
    assert_refused(cli, store, prepare_args(store, "c", tmp_path / "dd"), "several splits", "train")


def test_unknown_tokenizer(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", ["text"])
    args = ["prepare", "c", "--input", path, "--tokenizer", "nope", "--store", store.root]
    assert_refused(cli, store, args, "tokenizer 'nope'", "renewlm tokenizer train")


def test_existing_corpus_needs_overwrite(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", prose_texts()[:5])
    assert cli(*prepare_args(store, "c", path))[0] == 0
    code, _, err = cli(*prepare_args(store, "c", path))
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert cli(*prepare_args(store, "c", path, extra=["--overwrite"]))[0] == 0


def test_truncated_and_altered_shards_are_found_when_the_corpus_is_opened(cli, store, tmp_path):
    from renewlm.data.corpus import Corpus
    from renewlm.errors import CorruptError

    assert cli(*prepare_args(store, "c", write_jsonl(tmp_path / "a.jsonl", prose_texts()[:10]), extra=["--val-fraction", "0"]))[0] == 0
    shard = store.path("corpora", "c") / "train" / "00000.bin"
    data = bytearray(shard.read_bytes())
    data[100] ^= 0xFF  # same size, one byte changed
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptError, match="altered"):
        Corpus.open(store, "c")
    shard.write_bytes(bytes(data[:-2]))
    with pytest.raises(CorruptError, match="truncated"):
        Corpus.open(store, "c")
    mix = tmp_path / "m.yaml"
    mix.write_text("phases:\n  - corpora: {c: 1}\n")
    code, _, err = cli("mixture", "show", mix, "--samples", "10", "--seq-len", "8", "--store", store.root)
    assert code == 2 and "truncated" in err and "--overwrite" in err


def test_tokenizer_train_bad_input(cli, store, tmp_path):
    code, _, err = cli("tokenizer", "train", "t2", "--input", tmp_path / "missing.txt", "--vocab-size", "500", "--store", store.root)
    assert code == 2 and "does not exist" in err
    code, _, err = cli("tokenizer", "train", "t2", "--input", write_jsonl(tmp_path / "a.jsonl", ["x"]), "--vocab-size", "100", "--store", store.root)
    assert code == 2 and "too small" in err
    assert not store.exists("tokenizers", "t2")


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """~60 MB of JSON lines: several seconds of tokenizing, time to interrupt."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    lines = "".join(json.dumps({"text": t}) + "\n" for t in prose_texts())
    with path.open("w") as f:
        for _ in range(80):
            f.write(lines)
    return path


def start_prepare(store, path, workers):
    proc = subprocess.Popen(
        [sys.executable, "-m", "renewlm", *map(str, prepare_args(store, "big", path, extra=["--workers", str(workers)]))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    corpora = store.root / "corpora"
    deadline = time.monotonic() + 60
    while not (corpora.exists() and any(p.name.startswith(".tmp-") for p in corpora.iterdir())):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # well into tokenizing
    assert proc.poll() is None
    return proc


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, 2), (signal.SIGTERM, 2), (signal.SIGTERM, 1)])
def test_interrupting_prepare_leaves_nothing_behind(store, big_input, sig, workers):
    proc = start_prepare(store, big_input, workers)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, (out, err)
    assert "interrupted" in err and "Traceback" not in err
    assert list((store.root / "corpora").iterdir()) == []


def test_input_that_fails_while_workers_start_ends_them(store, tmp_path):
    # Each worker sleeps just after fork, so the pool's SIGTERM (the input fails at once) reaches it
    # before it has set its handlers: a worker must still end, and end only, not hang or run on.
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not parquet")
    code = f"""
import os, time
os.register_at_fork(after_in_child=lambda: time.sleep(0.5))
from renewlm.cli import main
main({[str(a) for a in prepare_args(store, "c", tmp_path / "broken.parquet", extra=["--workers", "2"])]!r})
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=30)
    finally:  # a hung pool: end its workers too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2 and err.count("error:") == 1 and "interrupted" not in err, err


def test_a_killed_prepare_leaves_no_corpus_nor_workers_and_the_next_write_cleans_up(cli, store, big_input, tmp_path):
    proc = start_prepare(store, big_input, 2)
    workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(workers) == 2
    proc.kill()
    proc.communicate(timeout=60)
    corpora = store.root / "corpora"
    # Only the temporary folder (and the store's lock file for it, which names a dead holder).
    assert not store.exists("corpora", "big") and len([p for p in corpora.iterdir() if p.name.startswith(".tmp-")]) == 1
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text() for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their killed parent"
        time.sleep(0.05)
    assert cli(*prepare_args(store, "small", write_jsonl(tmp_path / "s.jsonl", ["text"])))[0] == 0
    assert [p.name for p in corpora.iterdir() if not p.name.startswith(".lock-")] == ["small"]


def test_corpora_lists_both_splits_and_a_small_heldout_split_warns_with_the_fix(cli, store, tmp_path, monkeypatch):
    from renewlm.cli.app import console

    monkeypatch.setattr(console, "width", 200)  # the table's headers on one line each
    path = write_jsonl(tmp_path / "book.jsonl", ["\n\n".join(prose_texts())])  # one document: nothing held out
    code, out, err = cli(*prepare_args(store, "books", path))
    assert code == 0
    warning = [line for line in err.splitlines() if line.strip()]
    assert len(warning) == 1 and warning[0].startswith("warning: the held-out split holds only ")
    assert "--overwrite" in warning[0]
    fix = warning[0].split("prepare again with ")[1].split()  # pasted as it is printed
    code, out, err = cli(*prepare_args(store, "books", path, extra=fix))
    assert code == 0 and not err.strip() and "moved to the held-out split" in " ".join(out.split())
    code, out, err = cli(*prepare_args(store, "books", path, extra=["--overwrite", "--min-heldout-tokens", "20,000"]))
    assert code == 0 and not err.strip()
    code, out, _ = cli("corpora", "--store", store.root)
    for column in ("train tokens", "train documents", "held-out tokens", "held-out documents"):
        assert column in out
    m = json.loads((store.path("corpora", "books") / "corpus.json").read_text())
    row = next(line for line in out.splitlines() if "books" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    expected = [f"{m['train']['tokens']:,}", f"{m['train']['documents']:,}", "20,000", f"{m['val']['documents']:,}"]
    assert cells[1:5] == expected


@pytest.mark.parametrize("count, tokens", [("38,889", 38_889), ("38889", 38_889), ("39k", 39_000)])
def test_min_heldout_tokens_takes_counts_with_commas_or_a_suffix(cli, store, tmp_path, count, tokens):
    path = write_jsonl(tmp_path / "book.jsonl", ["\n\n".join(prose_texts())])
    code, out, err = cli(*prepare_args(store, "c", path, extra=["--min-heldout-tokens", count]))
    assert code == 0, err
    m = json.loads((store.path("corpora", "c") / "corpus.json").read_text())
    assert m["min_heldout_tokens"] == tokens == m["val"]["tokens"]
    assert f"to reach --min-heldout-tokens {tokens}" in " ".join(out.split())


def test_format_txt_reads_files_without_an_extension(cli, store, tmp_path):
    (tmp_path / "LICENSE").write_text(prose_texts()[0])
    code, out, err = cli(*prepare_args(store, "lic", tmp_path / "LICENSE", extra=["--format", "txt", "--val-fraction", "0"]))
    assert code == 0, err
    assert "in 1 documents" in " ".join(out.split())
