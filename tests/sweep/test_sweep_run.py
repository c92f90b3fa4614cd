"""A tiny sweep end to end (2 corpora × 2 LRs × 2 durations, one repeat each): interrupted after five
points, re-run to the end; the record, the WSD duration sweep and the suggested mixture checked."""

from fractions import Fraction

import pytest

from renewlm.data.mixture import load_mixture, validate_mixture
from renewlm.errors import ConfigError
from renewlm.store import read_json
from renewlm.sweep import read_record, resolve_settings, run_sweep
from renewlm.sweep import run as sweep_run
from renewlm.versions import read_version
from tests.sweep.conftest import base_version

NAME = "swp-tiny"
SETTINGS = {"data": ["prose", "code"], "lrs": [1e-3, 3e-3], "tokens": 256, "durations": [256, 512], "seed_repeats": 1, "eval_tokens": 512}
INTERRUPT_AFTER = 5


class Interrupted(Exception):
    pass


def counting_train(calls: list[str], stop_after: int | None = None):
    real = sweep_run.train

    def train(cfg, store, **kwargs):
        if stop_after is not None and len(calls) == stop_after:
            raise Interrupted(cfg.name)
        calls.append(cfg.name)
        return real(cfg, store, **kwargs)

    return train


@pytest.fixture(scope="module")
def swept(train_store):
    store = train_store
    s = resolve_settings(store, NAME, {"parent": base_version(store), **SETTINGS})
    first, second = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_run, "train", counting_train(first, INTERRUPT_AFTER))
        with pytest.raises(Interrupted):
            run_sweep(store, NAME, s)
    interrupted = read_record(store, NAME)
    mtimes = {n: store.path("runs", n).stat().st_mtime_ns for n in first}
    version_mtimes = {n: (store.path("versions", n) / "version.json").stat().st_mtime_ns for n in first}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_run, "train", counting_train(second))
        record = run_sweep(store, NAME, s)
    return {"store": store, "settings": s, "first": first, "second": second, "interrupted": interrupted,
            "mtimes": mtimes, "version_mtimes": version_mtimes, "record": record}


def test_the_tiny_sweep_finishes_with_every_point(swept):
    record = swept["record"]
    assert record["progress"] == {"done": 14, "planned": 14}  # per corpus: 2 LRs, 1 repeat, 2 trunks, 2 decays
    assert read_json(swept["store"].path("sweeps", NAME) / "sweep.json") == record
    for e in record["corpora"].values():
        losses = {x["lr"]: x["loss"] for x in e["lrs"]}
        assert e["best_lr"] == min(losses, key=losses.get)
        assert e["spread"] == pytest.approx(abs(e["repeats"][0]["loss"] - losses[e["best_lr"]]))
        assert e["best_tokens"] in [d["tokens"] for d in e["durations"]]
        assert {"heldout/prose", "heldout/code"} <= set(e["characterization"])
        for c in e["characterization"].values():
            assert c["verdict"] == ("unchanged" if abs(c["delta"]) <= c["spread"] else "helps" if c["delta"] < 0 else "hurts")


def test_an_interrupted_sweep_resumes_without_running_finished_points_again(swept):
    first, second = swept["first"], swept["second"]
    assert len(first) == INTERRUPT_AFTER and not set(first) & set(second)
    assert len(first) + len(second) == 14
    done = [x["version"] for x in swept["interrupted"]["corpora"]["prose"]["lrs"] if x["loss"] is not None]
    assert done == [f"{NAME}.prose.lr0.001", f"{NAME}.prose.lr0.003"]  # the record held their results when stopped
    store = swept["store"]
    for name in first:  # the finished runs were not touched by the second invocation
        assert store.path("runs", name).stat().st_mtime_ns == swept["mtimes"][name]
        assert (store.path("versions", name) / "version.json").stat().st_mtime_ns == swept["version_mtimes"][name]


def test_rerunning_a_finished_sweep_runs_nothing_and_refuses_other_settings(swept):
    store, calls = swept["store"], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sweep_run, "train", counting_train(calls))
        again = run_sweep(store, NAME, resolve_settings(store, NAME, {}))
    assert calls == [] and again["corpora"] == swept["record"]["corpora"]
    with pytest.raises(ConfigError, match="--lrs"):
        resolve_settings(store, NAME, {"lrs": [1e-4]})


def test_the_suggested_mixture_is_the_ratio_of_the_best_token_counts(swept):
    record = swept["record"]
    chosen = {c: e["best_tokens"] for c, e in record["corpora"].items() if e["in_mixture"]}
    assert chosen, "the tiny sweep should find at least one helpful corpus"
    total = sum(chosen.values())
    weights = record["suggested_mixture"]["phases"][0]["corpora"]
    assert set(weights) == set(chosen)
    assert {c: Fraction(w) / sum(map(Fraction, weights.values())) for c, w in weights.items()} == {
        c: Fraction(t, total) for c, t in chosen.items()
    }
    from_file = load_mixture(swept["store"].path("sweeps", NAME) / "mixture.yaml")
    assert from_file == validate_mixture(record["suggested_mixture"])


def test_each_duration_is_the_trunk_it_branched_from(swept):
    store, record = swept["store"], swept["record"]
    for e in record["corpora"].values():
        cumulative, offset = 0, 0
        for k, (trunk, d) in enumerate(zip(e["trunks"], e["durations"])):
            meta = read_version(store, trunk["version"])
            assert meta.kind == "trunk" and meta.optimizer_state
            assert trunk["data_offset"] == offset  # the segment reads on where the one before it stopped
            cumulative += meta.tokens
            offset += meta.tokens // meta.seq_len
            assert d["tokens"] == d["trunk_tokens"] == cumulative == SETTINGS["durations"][k]
            decay = read_version(store, d["version"])
            assert decay.trunk == d["branched_from"] == d["trunk"] == trunk["version"]
            assert [p.model_dump() for p in decay.parents] == [{"name": trunk["version"], "weight": 1.0}]
            assert decay.start == "weights+optimizer"
            if k:
                assert meta.start == "weights+optimizer" and meta.parents[0].name == e["trunks"][k - 1]["version"]
        cost = e["cost"]
        trunk_tokens = sum(t["tokens"] for t in e["trunks"])
        decay_tokens = sum(d["decay_tokens"] for d in e["durations"])
        assert cost["tokens"] == trunk_tokens + decay_tokens == SETTINGS["durations"][-1] + decay_tokens
        assert cost["independent_tokens"] == sum(SETTINGS["durations"]) + decay_tokens
        assert cost["flops"] < cost["independent_flops"]
    assert record["cost"]["saving"] == pytest.approx(1 - record["cost"]["flops"] / record["cost"]["independent_flops"])


TARGET_SWEEP = "swp-target"
TARGET_SETTINGS = {"data": ["prose", "code"], "lrs": [1e-3, 3e-3], "tokens": 256, "durations": [256], "seed_repeats": 1,
                   "eval_tokens": 512, "target": "code"}


def test_a_sweep_with_a_target_chooses_by_the_targets_loss_and_measures_it_once(train_store, monkeypatch):
    store = train_store
    s = resolve_settings(store, TARGET_SWEEP, {"parent": base_version(store), **TARGET_SETTINGS})
    measured = []
    real = sweep_run.heldout_loss_of
    monkeypatch.setattr(sweep_run, "heldout_loss_of", lambda *a: measured.append(a[2]) or real(*a))
    record = run_sweep(store, TARGET_SWEEP, s)
    assert record["progress"] == {"done": 10, "planned": 10}
    targets = record["target_losses"]
    for corpus, e in record["corpora"].items():
        assert e["best_lr"] == min(e["lrs"], key=lambda x: x["target"])["lr"]  # by the target's loss, not the corpus's own
        points = [*e["lrs"], *e["repeats"], *e["durations"]]
        assert all(p["target"] == targets[p["version"]] for p in points)
        losses = [next(x["target"] for x in e["lrs"] if x["lr"] == e["best_lr"]), e["repeats"][0]["target"]]
        assert e["spread"] == pytest.approx(max(losses) - min(losses))
        assert "the target code" in e["reason"]
    # code's own runs evaluated the target as they trained; prose's points were measured after, once each
    code = record["corpora"]["code"]
    assert all(p["target"] == p["loss"] for p in code["lrs"])
    prose = record["corpora"]["prose"]
    assert sorted(measured) == sorted(p["version"] for p in [*prose["lrs"], *prose["repeats"], *prose["durations"]])
    # measured with the run's own windows: the same number a run that evaluates the corpus records
    again = real(store, s, code["lrs"][0]["version"], "code")
    assert again == pytest.approx(code["lrs"][0]["loss"], abs=1e-6)
    measured.clear()
    assert run_sweep(store, TARGET_SWEEP, resolve_settings(store, TARGET_SWEEP, {}))["target_losses"] == targets
    assert measured == []  # read from the record, not measured again


def test_a_target_that_is_not_a_corpus_is_refused_before_anything_runs(train_store, cli):
    code, _, err = cli("sweep", "swp-no-target", "--from", base_version(train_store), "--data", "prose", "--target", "nope",
                       "--store", train_store.root)
    assert code == 2 and "--target 'nope' is not a corpus in the store" in err and "prepare it first" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not train_store.exists("sweeps", "swp-no-target")
