"""Read-only and full disks: every command that writes says so in one sentence (with the space a full
disk needs, where it is known) and exits 2, the store keeps nothing half-written, `eval` still prints
what it measured, and a run stopped by a full disk resumes bitwise once there is space again."""

import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from renewlm.errors import format_bytes
from renewlm.store import Store
from tests.conftest import prose_texts, write_jsonl
from tests.reliability.disks import full_disk, read_only
from tests.train.conftest import run_dict


def tiny_folder(tokenizer_dir, path, seed=0):
    """A tiny Llama folder with the tokenizer `tokenizer_dir`, as a user would import it."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=128)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def disk_store(train_store, tmp_path_factory):
    """A copy of the session's tokenizer and corpora, with versions `a` and `b` imported (tiny Llamas)."""
    from renewlm.versions import import_version

    tmp = tmp_path_factory.mktemp("disks")
    store = Store(tmp / "store")
    for kind in ("tokenizers", "corpora"):
        shutil.copytree(train_store.root / kind, store.root / kind)
    for seed, name in enumerate("ab"):
        import_version(store, name, tiny_folder(train_store.path("tokenizers", "tok"), tmp / name, seed))
    return store


def listing(store):
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*"))


def one_line(code, out, err):
    return code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in out + err


def test_every_command_that_writes_to_a_read_only_store_says_so(disk_store, cli, monkeypatch, tmp_path):
    texts = write_jsonl(tmp_path / "more.jsonl", prose_texts()[:20])
    before = listing(disk_store)
    read_only(monkeypatch, disk_store.root)
    for args in (
        ("update", "a2", "--from", "a", "--data", "prose", "--steps", "2"),
        ("prepare", "more", "--input", texts, "--tokenizer", "tok", "--workers", "1"),
        ("rm", "b"),
        ("soup", "ab", "--from", "a", "--from", "b"),
    ):
        code, out, err = cli(*args, "--store", disk_store.root)
        assert one_line(code, out, err), (args, err)
        assert "is on a read-only file system; remount it read-write" in err and str(disk_store.root) in err, err
    assert listing(disk_store) == before


def test_eval_on_a_read_only_store_prints_its_numbers_and_says_they_were_not_saved(disk_store, cli, monkeypatch):
    read_only(monkeypatch, disk_store.root)
    code, out, err = cli("eval", "a", "b", "--data", "prose", "--eval-tokens", "512", "--store", disk_store.root)
    assert code == 0 and "held-out loss" in out and "prose" in out, err
    assert err.startswith("warning: the results were not saved to evaluations.json: ") and "read-only" in err
    assert not (disk_store.path("versions", "a") / "evaluations.json").exists()


def test_prepare_on_a_full_disk_says_how_much_it_had_written_and_keeps_nothing(store, cli, monkeypatch, tmp_path):
    texts = tmp_path / "prose"
    texts.mkdir()
    for i in range(8):  # a file is tokenized (and written) as one piece: eight of them fill the disk one by one
        write_jsonl(texts / f"{i}.jsonl", prose_texts()[i::8])
    full_disk(monkeypatch, store.root, free_bytes=100_000)
    code, out, err = cli("prepare", "prose", "--input", texts, "--tokenizer", "tok", "--workers", "1", "--store", store.root)
    assert one_line(code, out, err), err
    assert f"corpus 'prose' cannot be written: no space left on the device holding {store.root / 'corpora'}; " in err
    assert "it needs more than the " in err and "run the same command again" in err
    assert sorted(p.name for p in (store.root / "corpora").iterdir()) == []  # no corpus, no temporary, no lock
    monkeypatch.undo()
    code, out, err = cli("prepare", "prose", "--input", texts, "--tokenizer", "tok", "--workers", "1", "--store", store.root)
    assert code == 0 and store.exists("corpora", "prose"), err


@pytest.mark.parametrize("command", ["soup", "export"])
def test_soup_and_export_on_a_full_disk_say_the_space_they_need(disk_store, cli, monkeypatch, tmp_path, command):
    copied = [p for p in disk_store.path("versions", "a").iterdir() if command == "soup" or p.name != "manifest.json"]
    needed = sum(p.stat().st_size for p in copied)  # an export writes a manifest of its own
    free = 40_000
    before = listing(disk_store)
    if command == "soup":
        full_disk(monkeypatch, disk_store.root, free_bytes=free)
        args, what = ("soup", "ab", "--from", "a", "--from", "b"), "version 'ab'"
    else:
        (tmp_path / "exports").mkdir()
        full_disk(monkeypatch, tmp_path / "exports", free_bytes=free)
        args, what = ("export", "a", "--to", tmp_path / "exports" / "a"), "the export of 'a'"
    code, out, err = cli(*args, "--store", disk_store.root)
    assert one_line(code, out, err), err
    assert f"{what} cannot be written: no space left on the device holding " in err
    assert f"it needs about {format_bytes(needed)} and {format_bytes(free)} is free: free {format_bytes(needed - free)} more" in err
    assert listing(disk_store) == before and not list(tmp_path.rglob(".tmp-*"))


def test_a_run_stopped_by_a_full_disk_in_its_metrics_log_resumes_bitwise(train_store, cli, monkeypatch, tmp_path):
    settings = dict(steps=6, checkpoint_every=2, log_every=1)
    for name in ("disk-whole", "disk-full"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(run_dict(name, **settings)))
    assert cli("train", tmp_path / "disk-whole.yaml", "--fresh", "--store", train_store.root)[0] == 0
    expected = load_file(train_store.path("versions", "disk-whole") / "model.safetensors")
    log = train_store.path("runs", "disk-full") / "metrics.jsonl"
    full_disk(monkeypatch, log, free_bytes=1_500)  # room for a few steps' lines, then the disk is full
    code, out, err = cli("train", tmp_path / "disk-full.yaml", "--fresh", "--store", train_store.root)
    assert one_line(code, out, err), err
    assert f"{log} cannot be written: no space left on the device holding {log.parent}; free space there" in err
    assert not train_store.exists("versions", "disk-full")
    kept = sorted(p.name for p in (train_store.path("runs", "disk-full") / "checkpoints").iterdir())
    assert kept == ["step-00000002", "step-00000004"]  # the disk filled at step 5's line
    monkeypatch.undo()
    code, out, err = cli("train", tmp_path / "disk-full.yaml", "--store", train_store.root)
    assert code == 0 and "resum" in out.lower(), err
    got = load_file(train_store.path("versions", "disk-full") / "model.safetensors")
    assert got.keys() == expected.keys() and all(got[k].equal(expected[k]) for k in got)
