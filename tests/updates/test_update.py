"""`renewlm update`: the short form fills in the papers' defaults and the lineage's replay."""

import json

import pytest
import yaml

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.metrics import read_metrics
from renewlm.train.loop import train
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config
from renewlm.versions.record import schedule_lrs
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def base(train_store):
    if not train_store.exists("versions", "upd-base"):
        train(validate_run(run_dict("upd-base", steps=3)), train_store, fresh=True)
    return train_store


def test_update_config_replays_the_lineage_and_takes_the_parents_settings(base):
    cfg = update_config(base, UpdateRequest(name="u1", parent="upd-base", data=["code"], replay=0.25, tokens=256 * 10))
    assert cfg.mixture.phase_weights() == [{"code": 0.75, "prose": 0.25}]
    assert (cfg.seq_len, cfg.batch_tokens, cfg.total_steps) == (32, 256, 10)
    assert cfg.schedule.name == "cosine" and cfg.schedule.peak_lr == 3e-3  # the parent's peak: re-warm to it
    reuse = update_config(base, UpdateRequest(name="u2", parent="upd-base", data=["code"], recipe="reuse", steps=5))
    assert reuse.schedule.start_lr == pytest.approx(3e-4)  # the parent's floor, 0.1·peak
    constant = update_config(base, UpdateRequest(name="u3", parent="upd-base", data=["code"], recipe="constant", steps=5))
    assert constant.schedule.lr == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match=r"every corpus its lineage trained on \(prose\) is new data.*--replay-from"):
        update_config(base, UpdateRequest(name="u4", parent="upd-base", data=["prose"], replay=0.1, steps=5))
    with pytest.raises(ConfigError, match="not in the store"):
        update_config(base, UpdateRequest(name="u5", parent="upd-base", data=["code"], replay=0.1, replay_from=["gone"], steps=5))


def test_update_command_trains_and_records_the_resolved_run(cli, base):
    code, out, err = cli("update", "upd-child", "--from", "upd-base", "--data", "code", "--replay", "0.25",
                         "--steps", "4", "--micro-batch", "4", "--store", base.root)
    assert code == 0, err
    meta = json.loads((base.path("versions", "upd-child") / "version.json").read_text())
    assert meta["parents"] == [{"name": "upd-base", "weight": 1.0}] and meta["corpora"] == ["code", "prose"] and meta["start"] == "weights"
    assert set(meta["losses"]) == {"code", "prose"}
    run = yaml.safe_load((base.path("runs", "upd-child") / "run.yaml").read_text())
    assert run["mixture"]["replay"] == {"fraction": 0.25, "corpora": {"prose": 768.0}}  # tokens upd-base trained on it
    code, _, err = cli("update", "upd-child", "--from", "upd-base", "--data", "code", "--steps", "4", "--store", base.root)
    assert code == 2 and "already exists" in err
    code, _, err = cli("update", "x", "--from", "no-such", "--data", "code", "--steps", "4", "--store", base.root)
    assert code == 2 and "no version named 'no-such'" in err


def test_data_weights_default_to_token_counts_and_can_be_given(base):
    from renewlm.data.corpus import Corpus

    prose, code = (Corpus.open(base, n).train.num_tokens for n in ("prose", "code"))
    cfg = update_config(base, UpdateRequest(name="w1", parent="upd-base", data=["prose", "code"], steps=2))
    weights = cfg.mixture.phase_weights()[0]
    assert weights["prose"] == pytest.approx(prose / (prose + code))  # as if the corpora were concatenated
    cfg = update_config(base, UpdateRequest(name="w2", parent="upd-base", data=["prose:0.7", "code:0.3"], steps=2))
    assert cfg.mixture.phase_weights()[0] == pytest.approx({"prose": 0.7, "code": 0.3})
    for bad, match in ((["prose:0.7", "code"], "to every --data corpus"), (["prose:-1"], "positive number"),
                       (["prose:x"], "positive number"), (["prose", "prose"], "twice")):
        with pytest.raises(ConfigError, match=match):
            update_config(base, UpdateRequest(name="w3", parent="upd-base", data=bad, steps=2))


def test_replay_is_split_by_the_tokens_each_lineage_corpus_was_trained_on(base):
    if not base.exists("versions", "upd-mixed"):
        mixed = run_dict("upd-mixed", preset=None, tokenizer=None, parent="upd-base", steps=4,
                         mixture={"phases": [{"corpora": {"prose": 3.0, "code": 1.0}}]})
        train(validate_run(mixed), base, fresh=True)
    meta = json.loads((base.path("versions", "upd-mixed") / "version.json").read_text())
    assert meta["corpus_tokens"] == {"prose": 3 * 256, "code": 256}  # 4 steps of 8 sequences of 32 tokens
    other = update_config(base, UpdateRequest(name="r1", parent="upd-mixed", data=["code:1"], replay=0.2, replay_from=["prose"], steps=2))
    assert other.mixture.phase_weights()[0] == pytest.approx({"code": 0.8, "prose": 0.2})
    # Lineage: upd-base trained 3 steps on prose (768 tokens), upd-mixed 768 prose + 256 code.
    from renewlm.data.corpus import Corpus

    Corpus.open(base, "code")  # both corpora still in the store
    cfg = update_config(base, UpdateRequest(name="r2", parent="upd-mixed", data=["prose:1"], replay=0.5, replay_from=None, steps=2))
    assert cfg.mixture.phase_weights()[0] == pytest.approx({"prose": 0.5, "code": 0.5})  # code is the only old one
    assert cfg.mixture.replay.corpora == {"code": 256.0}


def test_bad_update_values_are_refused_not_replaced(base):
    for kwargs, match in (
        (dict(replay=-0.5), r"--replay must be a share"), (dict(replay=float("nan")), r"--replay must be a share"),
        (dict(replay=1.0), r"--replay must be a share"), (dict(seq_len=0), "--seq-len must be a positive"),
        (dict(batch_tokens=0), "--batch-tokens must be a positive"), (dict(micro_batch=0), "--micro-batch must be"),
        (dict(lr=0.0), "--lr must be a positive"), (dict(steps=0), "--steps must be a positive"),
    ):
        with pytest.raises(ConfigError, match=match):
            update_config(base, UpdateRequest(name="bad", parent="upd-base", data=["code"], **{"steps": 2, **kwargs}))


def test_a_trunk_holds_its_peak_lr_and_the_next_trunk_continues_it(base):
    cfg = update_config(base, UpdateRequest(name="t1", parent="upd-base", data=["code"], steps=6), kind="trunk")
    assert cfg.schedule.name == "wsd" and cfg.schedule.decay_fraction == 0 and not cfg.load_optimizer
    train(cfg, base, fresh=True)
    lrs = [r["lr"] for r in read_metrics(base.path("runs", "t1") / "metrics.jsonl") if "lr" in r]
    assert lrs[1:] == [3e-3] * 5  # after a one-step warmup: the peak, never lower
    cfg = update_config(base, UpdateRequest(name="t2", parent="t1", data=["code"], steps=3), kind="trunk")
    assert cfg.schedule.model_dump() == {"name": "constant", "lr": 3e-3} and cfg.load_optimizer  # no re-warm
    with pytest.raises(ConfigError, match="a trunk keeps the main path .* never decays"):
        update_config(base, UpdateRequest(name="t3", parent="upd-base", data=["code"], steps=3, recipe="wsd"), kind="trunk")
    with pytest.raises(ConfigError, match="a trunk never decays"):
        validate_run(run_dict("t4", kind="trunk"))  # cosine
    with pytest.raises(ConfigError, match="a trunk never decays"):
        validate_run(run_dict("t5", kind="trunk", schedule={"name": "wsd", "peak_lr": 1e-3, "decay_tokens": 64}))


def test_a_parents_lrs_are_its_recorded_schedules_own_peak_and_floor():
    assert schedule_lrs({"name": "cosine", "peak_lr": 1e-3, "min_lr": None}) == (1e-3, pytest.approx(1e-4))
    assert schedule_lrs({"name": "reuse", "start_lr": 1e-4, "min_lr": None}) == (1e-4, pytest.approx(1e-6))
    assert schedule_lrs({"name": "constant", "lr": 2e-4}) == (2e-4, 2e-4)
    assert schedule_lrs({"name": "import", "peak_lr": 1e-3}) == (1e-3, None)  # `import --peak-lr` alone
    assert schedule_lrs(None) == (None, None)
    assert schedule_lrs({"name": "cosine", "min_lr": 1e-5}) == (None, None)  # no longer a valid spec: unknown


def test_an_update_and_a_retrain_attend_as_their_parent_was_trained(base):
    from renewlm.updates.retrain import retrain_config

    if not base.exists("versions", "upd-masked"):
        train(validate_run(run_dict("upd-masked", steps=2, document_mask=True)), base, fresh=True)
    for parent, masked in (("upd-base", False), ("upd-masked", True)):
        request = UpdateRequest(name="um", parent=parent, data=["code"], steps=2)
        assert update_config(base, request).document_mask is masked
        assert update_config(base, request, kind="trunk").document_mask is masked
        assert retrain_config(base, request.model_copy(update={"paradigm": "retrain"})).document_mask is masked
