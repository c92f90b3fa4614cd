"""Concurrency: one writer per run and per store entry, across processes and nodes. A second writer is
refused with one sentence naming the first; a dead local holder's lock is taken over, another host's
never; the stale-temporary cleanup leaves other hosts' entries alone."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from renewlm.lock import holder_identity, hostname
from tests.conftest import prose_texts, write_jsonl
from tests.train.conftest import run_dict

CONTEND = textwrap.dedent(
    """
    import sys, time
    from renewlm.lock import Lock, LockedError
    path, log = sys.argv[1], sys.argv[2]
    held = 0
    while held < 15:
        try:
            with Lock(path, what="entry 'x'"):
                with open(log, "a") as f:
                    f.write(f"in {sys.argv[3]}\\n")
                time.sleep(0.002)
                with open(log, "a") as f:
                    f.write(f"out {sys.argv[3]}\\n")
            held += 1
        except LockedError as e:
            assert "entry 'x' is being written by pid" in str(e), e
        time.sleep(0.001)
    """
)

HOLD = textwrap.dedent(
    """
    import sys
    from renewlm.store import Store
    with Store(sys.argv[1]).lock(sys.argv[2], sys.argv[3]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def hold(store, kind, name):
    """Another process holding the lock of entry `name` until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store.root), kind, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_processes_contending_for_one_lock_never_hold_it_together(tmp_path):
    path, log = tmp_path / ".lock-x", tmp_path / "log"
    path.write_text(json.dumps(dict(holder_identity("entry 'x'"), pid=dead_pid())))  # a stale one to break first
    procs = [subprocess.Popen([sys.executable, "-c", CONTEND, str(path), str(log), str(i)]) for i in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    lines = log.read_text().splitlines()
    assert len(lines) == 3 * 15 * 2
    for enter, leave in zip(lines[::2], lines[1::2]):  # strictly in, out, in, out: never two inside
        assert enter.startswith("in ") and leave == "out " + enter[3:]
    assert not path.exists()


def test_a_second_prepare_of_one_corpus_name_is_refused_naming_the_first(store, tmp_path, cli):
    source = write_jsonl(tmp_path / "a.jsonl", prose_texts()[:20])
    holder = hold(store, "corpora", "news")
    try:
        code, _, err = cli("prepare", "news", "--input", source, "--tokenizer", "tok", "--workers", "1", "--store", store.root)
    finally:
        holder.stdin.close()
        holder.wait()
    assert code == 2
    assert f"corpus 'news' in {store.root} is being written by pid {holder.pid} on {hostname()}" in err
    assert err.count("\n") == 1 and not store.exists("corpora", "news")
    assert cli("prepare", "news", "--input", source, "--tokenizer", "tok", "--workers", "1", "--store", store.root)[0] == 0


def test_prepare_cleans_this_hosts_dead_temporaries_and_keeps_another_nodes(store, tmp_path, cli):
    corpora = store.root / "corpora"
    remote = corpora / ".tmp-news@node-17.cluster-4242-abcd1234"
    local_dead = corpora / f".tmp-news@{hostname()}-{dead_pid()}-abcd1234"
    for folder in (remote, local_dead):
        folder.mkdir(parents=True)
        (folder / "shard-0.bin").write_bytes(b"in progress")
    source = write_jsonl(tmp_path / "a.jsonl", prose_texts()[:20])
    assert cli("prepare", "other", "--input", source, "--tokenizer", "tok", "--workers", "1", "--store", store.root)[0] == 0
    assert (remote / "shard-0.bin").exists() and not local_dead.exists()


def _run_file(tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(run_dict(name, steps=2)))
    return path


def test_a_second_train_of_one_run_is_refused_before_any_compute(train_store, tmp_path, cli):
    # Needs train/run.py to take store.lock("runs", name) for the run's life.
    run = _run_file(tmp_path, "concurrent")
    holder = hold(train_store, "runs", "concurrent")
    try:
        code, out, err = cli("train", run, "--fresh", "--store", train_store.root)
    finally:
        holder.stdin.close()
        holder.wait()
    assert code == 2, out + err
    assert f"run 'concurrent' in {train_store.root} is being written by pid {holder.pid}" in err
    assert not (train_store.path("runs", "concurrent") / "metrics.jsonl").exists()


def test_a_run_lock_left_by_a_killed_local_process_is_taken_over(train_store, tmp_path, cli):
    run = _run_file(tmp_path, "after-kill")
    lock = train_store.root / "runs" / ".lock-after-kill"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps(dict(holder_identity("run 'after-kill'"), pid=dead_pid())))
    code, out, err = cli("train", run, "--fresh", "--store", train_store.root)
    assert code == 0, out + err
    assert not lock.exists()


def test_a_run_lock_held_on_another_node_is_not_broken(train_store, tmp_path, cli):
    run = _run_file(tmp_path, "remote")
    lock = train_store.root / "runs" / ".lock-remote"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps(dict(holder_identity("run 'remote'"), host="node-17.cluster", pid=os.getpid() + 1)))
    code, _, err = cli("train", run, "--fresh", "--store", train_store.root)
    assert code == 2 and f"if that process is gone, remove {lock}" in err
    assert lock.exists()


def test_a_version_is_not_removed_while_a_run_trains_from_it(store, tmp_path, monkeypatch):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from renewlm.data.tokenizer import load_tokenizer
    from renewlm.errors import StoreError
    from renewlm.train import loop
    from renewlm.train.config import validate_run
    from renewlm.versions import remove_version, write_version

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=1024, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    write_version(store, "parent", model, load_tokenizer(store, "tok"), {})
    refusals = []

    def training(cfg, store_, dist_, fresh=False):  # inside the run's lock, where the run would train
        for force in (False, True):
            with pytest.raises(StoreError) as e:
                remove_version(store_, "parent", force=force)
            refusals.append(str(e.value))
        raise RuntimeError("the run ends here")

    monkeypatch.setattr(loop, "prepare_run", training)
    with pytest.raises(RuntimeError, match="the run ends here"):
        loop.train(validate_run(run_dict("child", preset=None, tokenizer=None, parent="parent")), store)
    assert len(refusals) == 2 and all(
        r.startswith(f"version 'parent' is the parent of run 'child', training now (pid {os.getpid()} on {hostname()}")
        and r.endswith("then remove 'parent'") for r in refusals
    ), refusals
    remove_version(store, "parent")  # the run is over: its lock is gone
    assert not store.exists("versions", "parent")
