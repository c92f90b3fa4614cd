"""Path switching as a product: a series of `switch` updates keeps one main path and branches each
release off the trunk of its own update."""

import hashlib
import json

import pytest
import torch
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.distributed import setup
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.train.run import prepare_run
from renewlm.updates.paradigm import run_file, run_update
from renewlm.updates.request import UpdateRequest
from renewlm.updates.retrain import retrain_config
from renewlm.versions import cost, read_version
from renewlm.data.prepare import prepare
from tests.conftest import write_jsonl
from tests.train.conftest import code_texts, run_dict

PEAK = 3e-3


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _lrs(store, run):
    return [r["lr"] for r in read_metrics(store.path("runs", run) / "metrics.jsonl") if "lr" in r]


@pytest.fixture(scope="module")
def series(train_store, tmp_path_factory):
    """sw-base (pre-trained on prose), then three switch updates, each on a new corpus: code, sw-c3, sw-c4."""
    store = train_store
    if not store.exists("versions", "sw-base"):
        train(validate_run(run_dict("sw-base", steps=3)), store, fresh=True)
    texts = code_texts(2_000_000)[len(code_texts()):]  # stdlib modules the `code` corpus does not hold
    for i, corpus in enumerate(("sw-c3", "sw-c4")):
        if not store.exists("corpora", corpus):
            path = write_jsonl(tmp_path_factory.mktemp(corpus) / "texts.jsonl", texts[i::2])
            prepare(store, corpus, [path], "tok", val_fraction=0.1, workers=1)
    shas = {}
    for name, parent, corpus in (("sw2", "sw-base", "code"), ("sw3", "sw2", "sw-c3"), ("sw4", "sw3", "sw-c4")):
        if not store.exists("versions", name):
            run_update(store, UpdateRequest(name=name, parent=parent, data=[corpus], paradigm="switch", decay_fraction=0.5,
                                            steps=4, micro_batch=4, replay=0.25))
        shas[f"{name}-trunk"] = _sha(store.path("versions", f"{name}-trunk") / "model.safetensors")
    return store, shas


def test_each_release_branches_off_the_trunk_of_its_own_update(series):
    store, _ = series
    for name, main_parent in (("sw2", "sw-base"), ("sw3", "sw2-trunk"), ("sw4", "sw3-trunk")):
        release, trunk = read_version(store, name), read_version(store, f"{name}-trunk")
        assert release.trunk == f"{name}-trunk" and [p.model_dump() for p in release.parents] == [{"name": f"{name}-trunk", "weight": 1.0}]
        assert release.start == "weights+optimizer" and release.steps == 2  # decay over 50% of 4 steps
        assert trunk.kind == "trunk" and trunk.optimizer_state and trunk.parents[0].name == main_parent
        assert trunk.start == ("weights" if main_parent == "sw-base" else "weights+optimizer")
        lrs = _lrs(store, name)
        assert lrs[0] == pytest.approx(PEAK) and lrs[-1] < lrs[0]  # from the trunk's LR, decaying completely


def test_the_trunk_never_decays(series):
    store, _ = series
    assert _lrs(store, "sw2-trunk")[-3:] == [PEAK] * 3  # after its warmup from the pre-trained release
    for trunk in ("sw3-trunk", "sw4-trunk"):
        assert _lrs(store, trunk) == [PEAK] * 4  # continued: no re-warm, never lower


def test_branching_leaves_the_trunk_bitwise_unchanged(series):
    store, shas = series
    for trunk, sha in shas.items():
        assert _sha(store.path("versions", trunk) / "model.safetensors") == sha


def test_a_release_starts_from_its_trunks_adam_moments(series, tmp_path):
    store, _ = series
    saved = tmp_path / "trunk-optim.pt"
    dcp_to_torch_save(store.path("versions", "sw3-trunk") / "optimizer", saved)
    trunk_state = torch.load(saved, weights_only=False)["optim"]["state"]
    config = json.loads((store.path("runs", "sw3") / "run.json").read_text())["config"]
    probe = validate_run({**config, "name": "sw3-probe"})  # the release's own run, built afresh
    run = prepare_run(probe, store, setup(), fresh=True)
    try:
        state = get_optimizer_state_dict(run.model, run.optimizer)["state"]  # keyed by parameter name
        assert set(state) == set(trunk_state) and len(state) == len(list(run.model.parameters()))
        for name in state:
            for moment in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(state[name][moment], trunk_state[name][moment]), (name, moment)
    finally:
        import shutil

        shutil.rmtree(store.path("runs", "sw3-probe"), ignore_errors=True)


def test_the_ledger_counts_each_trunk_once_across_the_series(series):
    store, _ = series
    c = cost(store, "sw4")
    assert c["lineage"] == ["sw-base", "sw2-trunk", "sw3-trunk", "sw4-trunk", "sw4"]
    assert c["series"] == ["sw-base", "sw2", "sw3", "sw4"]
    flops = {n: read_version(store, n).flops for n in ("sw-base", "sw2-trunk", "sw2", "sw3-trunk", "sw3", "sw4-trunk", "sw4")}
    assert c["series_flops"] == pytest.approx(sum(flops.values()))
    assert c["cumulative_flops"] == pytest.approx(sum(flops[n] for n in c["lineage"]))
    # Each trunk update read 1,024 tokens (3/4 new data, 1/4 replay), each release decayed over 512; the
    # base read 768. Retraining the releases would read 768, then 768 + 768, 3 × 768, 4 × 768 tokens.
    assert c["series_ratio"] == pytest.approx((768 + 3 * 1024 + 3 * 512) / (768 * (1 + 2 + 3 + 4)))


def test_a_retrain_of_the_series_reads_each_corpus_for_the_new_data_it_gave(series):
    store, _ = series
    cfg = retrain_config(store, UpdateRequest(name="sw-retrain", parent="sw4", data=["code:1"], paradigm="retrain", steps=2))
    # Each corpus gave 768 tokens where it was new; the trunks' replay and the releases' decays read old
    # corpora again, which is not data: counting it would give prose the most and the new corpora less.
    assert cfg.mixture.phases[0].corpora == {"prose": 768, "code": 768 + 512, "sw-c3": 768, "sw-c4": 768}
    assert cfg.tokens == cost(store, "sw4")["data_tokens"] + 512 == 4 * 768 + 512


def test_switch_refuses_a_trunk_and_names_the_release(series):
    store, _ = series
    with pytest.raises(ConfigError, match=r"'sw3-trunk' is a trunk .* \(sw3\)"):
        run_update(store, UpdateRequest(name="sw5", parent="sw3-trunk", data=["code"], paradigm="switch", steps=2))
    assert not store.path("runs", "sw5-trunk").exists()


def test_a_release_of_one_decay_step_is_refused_before_the_trunk_trains(series, cli):
    store, _ = series
    # 10% of 10 steps is one step, and a decay's first step runs at the trunk's LR: nothing would decay.
    code, _, err = cli("update", "sw-short", "--from", "sw4", "--data", "code", "--steps", "10", "--paradigm", "switch",
                       "--store", store.root)
    assert code == 2 and "decay over 1 step (0.1 of the trunk's 10)" in err and "at least 15 steps" in err
    assert not store.path("runs", "sw-short-trunk").exists() and not store.exists("versions", "sw-short-trunk")
    short = validate_run(run_dict("sw-short", paradigm="switch", decay_fraction=0.25, steps=4,
                                  schedule={"name": "wsd", "peak_lr": PEAK, "decay_fraction": 0.0}))
    with pytest.raises(ConfigError, match=r"decays over at least 2 steps; give the update at least 6 steps"):
        run_file(short, store, fresh=True)
    assert not store.path("runs", "sw-short-trunk").exists()


def test_a_run_file_with_paradigm_switch_writes_a_trunk_and_its_release(train_store):
    cfg = validate_run(run_dict("sw-scratch", paradigm="switch", decay_fraction=0.5, steps=4,
                                schedule={"name": "wsd", "peak_lr": PEAK, "decay_fraction": 0.0}))
    info = run_file(cfg, train_store, fresh=True)
    assert info["steps"] == 2 and read_version(train_store, "sw-scratch").trunk == "sw-scratch-trunk"
    assert read_version(train_store, "sw-scratch-trunk").kind == "trunk"
    with pytest.raises(ConfigError, match="a trunk never decays"):
        validate_run(run_dict("sw-bad", paradigm="switch"))  # cosine: the main path would decay
