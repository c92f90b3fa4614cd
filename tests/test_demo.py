"""`renewlm demo`, small enough for CI; the full-size demo is marked slow."""

import pytest

from renewlm.demo import NAMES, VERSIONS, DemoSize, run_demo
from renewlm.store import Store
from renewlm.versions import read_version


def test_demo_builds_data_pretrains_and_updates_with_and_without_replay(tmp_path):
    store = Store(tmp_path / "store")
    size = DemoSize(code_bytes=1_000_000, vocab_size=512, seq_len=64, batch_tokens=512, pretrain_steps=8, update_steps=4)
    losses = run_demo(store, size, say=lambda *_: None)
    assert set(losses) == set(VERSIONS)
    for name in VERSIONS:
        assert set(losses[name]) == {NAMES["prose"], NAMES["code"]}
    assert read_version(store, VERSIONS[2])["mixture"]["replay"]["fraction"] == 0.25
    assert read_version(store, VERSIONS[1])["mixture"]["replay"] is None
    assert read_version(store, VERSIONS[1])["parents"] == [{"name": VERSIONS[0], "weight": 1.0}]
    # Rerunning the demo starts its versions over instead of refusing them.
    run_demo(store, size, say=lambda *_: None)


@pytest.mark.slow
def test_full_demo_replay_forgets_less_than_no_replay(tmp_path, cli):
    code, out, err = cli("demo", "--store", tmp_path / "store")
    assert code == 0, err
    store = Store(tmp_path / "store")
    base = read_version(store, VERSIONS[0])["losses"][NAMES["prose"]]
    naive = read_version(store, VERSIONS[1])["losses"]
    replay = read_version(store, VERSIONS[2])["losses"]
    assert naive[NAMES["prose"]] - base > replay[NAMES["prose"]] - base  # replay forgets less
    assert abs(naive[NAMES["code"]] - replay[NAMES["code"]]) < 0.1  # and learns code about as well
    assert "held-out loss" in out
