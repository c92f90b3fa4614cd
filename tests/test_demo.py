"""`renewlm demo`, small enough for CI; the full-size demo is marked slow."""

import re

import pytest
import torch

from renewlm.examples.demo import NAMES, VERSIONS, DemoSize, choose_threads, run_demo
from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.versions import read_version


def test_demo_builds_data_pretrains_and_updates_with_and_without_replay(tmp_path):
    store = Store(tmp_path / "store")
    size = DemoSize(code_bytes=1_000_000, vocab_size=512, seq_len=64, batch_tokens=512, pretrain_steps=8, update_steps=4)
    said, threads = [], torch.get_num_threads()
    losses = run_demo(store, size, say=said.append, threads=1)
    assert said[0].startswith("demo on 1 CPU thread (--threads, ") and said[0].endswith("; choose with --threads N")
    # One plan for the whole demo, before the first run: 16 steps of 512 tokens trained.
    plan = [line for line in said if line.startswith("plan: 3 runs")]
    assert len(plan) == 1 and "8 + 4 + 4 steps × 512 tokens (8,192 tokens trained" in plan[0], said
    assert re.search(r"about \d+\.\d min more, \d+\.\d min in all$", plan[0])
    assert [line.split(" ")[0] for line in said] == ["demo", "data:", "corpus", "corpus", "plan:"]
    assert torch.get_num_threads() == threads  # put back when the demo ends
    assert set(losses) == set(VERSIONS)
    for name in VERSIONS:
        assert set(losses[name]) == {NAMES["prose"], NAMES["code"]}
    assert read_version(store, VERSIONS[2]).mixture["replay"]["fraction"] == 0.25
    assert read_version(store, VERSIONS[1]).mixture["replay"] is None
    assert [p.model_dump() for p in read_version(store, VERSIONS[1]).parents] == [{"name": VERSIONS[0], "weight": 1.0}]
    # Rerunning the demo starts its versions over instead of refusing them.
    run_demo(store, size, say=lambda *_: None)


@pytest.mark.slow
def test_full_demo_replay_forgets_less_than_no_replay(tmp_path, cli):
    code, out, err = cli("demo", "--store", tmp_path / "store")
    assert code == 0, err
    store = Store(tmp_path / "store")
    base = read_version(store, VERSIONS[0]).losses[NAMES["prose"]]
    naive = read_version(store, VERSIONS[1]).losses
    replay = read_version(store, VERSIONS[2]).losses
    assert naive[NAMES["prose"]] - base > replay[NAMES["prose"]] - base  # replay forgets less
    assert abs(naive[NAMES["code"]] - replay[NAMES["code"]]) < 0.1  # and learns code about as well
    assert "held-out loss" in out


def test_threads_follow_the_free_cores_unless_asked(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.getloadavg", lambda: (1.2, 1.0, 0.9))  # one core busy with other work
    assert choose_threads() == (1, "2 cores, load average 1.2")
    monkeypatch.setattr("os.getloadavg", lambda: (0.1, 0.1, 0.1))
    assert choose_threads() == (2, "2 cores, load average 0.1")
    monkeypatch.setattr("os.getloadavg", lambda: (9.0, 9.0, 9.0))
    assert choose_threads()[0] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads() == (3, "OMP_NUM_THREADS, 2 cores")
    assert choose_threads(2) == (2, "--threads, 2 cores")
    with pytest.raises(ConfigError, match=r"--threads 0 must be at least 1; e.g. --threads 2"):
        choose_threads(0)


def test_demo_refuses_zero_threads_in_one_sentence(tmp_path, cli):
    code, out, err = cli("demo", "--threads", "0", "--store", tmp_path / "store")
    assert code == 2 and err.startswith("error: --threads 0 must be at least 1") and err.count("\n") == 1, err
    assert not (tmp_path / "store" / "versions").exists()
