"""`--paradigm retrain`: from scratch in the parent's architecture, on every lineage corpus and the new
data, each for as many tokens as the lineage read of it as new data (replay is not data), and the update."""

import pytest

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.updates.paradigm import run_update
from renewlm.updates.request import UpdateRequest
from renewlm.updates.retrain import retrain_config
from renewlm.versions import read_version
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def parent(train_store):
    """rt-base: 4 steps on prose (1,024 tokens), then rt-v2: 4 steps of code with 25% prose replay."""
    if not train_store.exists("versions", "rt-v2"):
        train(validate_run(run_dict("rt-base", steps=4)), train_store, fresh=True)
        run_update(train_store, UpdateRequest(name="rt-v2", parent="rt-base", data=["code"], replay=0.25, steps=4))
    return train_store


def test_retrain_reads_every_lineage_corpus_in_the_planned_proportions(parent):
    cfg = retrain_config(parent, UpdateRequest(name="rt-v3", parent="rt-v2", data=["prose:1"], paradigm="retrain", steps=2))
    # Data so far: prose 1,024 (rt-v2's 256 of replay read it again), code 768; the update adds 2 steps × 256
    # tokens of prose. Counting the replay would give prose 1,280 + 512 of a total that has room for 1,024 + 512.
    assert cfg.mixture.phases[0].corpora == {"prose": 1024 + 512, "code": 768}
    assert cfg.tokens == 1024 + 768 + 512 and cfg.from_scratch and cfg.parent == "rt-v2"
    assert cfg.schedule.name == "cosine" and cfg.schedule.peak_lr == 3e-3  # the lineage's pre-training peak
    info = train(cfg, parent, fresh=True)
    meta = read_version(parent, "rt-v3")
    assert info["start"] == "fresh" and meta.paradigm == "retrain" and meta.steps == 9  # 2,304 tokens
    shares = {c: t / sum(meta.corpus_tokens.values()) for c, t in meta.corpus_tokens.items()}
    assert shares == pytest.approx({"prose": 1536 / 2304, "code": 768 / 2304}, abs=1 / 72)  # within a sequence
    assert meta.data_tokens == 0  # both corpora were trained on before: no data new to the lineage
    assert set(meta.losses) == {"prose", "code"}


def test_retrain_refuses_what_it_cannot_do(parent):
    with pytest.raises(ConfigError, match="takes no --replay"):
        run_update(parent, UpdateRequest(name="rt-x", parent="rt-v2", data=["code"], paradigm="retrain", replay=0.1, steps=2))
    parent.path("corpora", "code").rename(parent.root / "corpora" / "code-away")
    try:
        with pytest.raises(ConfigError, match="code is no longer in the store"):
            retrain_config(parent, UpdateRequest(name="rt-x", parent="rt-v2", data=["prose"], paradigm="retrain", steps=2))
    finally:
        (parent.root / "corpora" / "code-away").rename(parent.path("corpora", "code"))
    assert not parent.path("runs", "rt-x").exists()
    with pytest.raises(ConfigError, match="--lr must be a positive"):
        retrain_config(parent, UpdateRequest(name="rt-x", parent="rt-v2", data=["prose"], paradigm="retrain", steps=2, lr=0.0))


def test_retrain_refuses_a_lineage_with_an_import(parent, cli, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(parent.path("tokenizers", "tok"))
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=1, n_head=2, n_positions=64)).save_pretrained(tmp_path / "m")
    tokenizer.save_pretrained(tmp_path / "m")
    code, _, err = cli("import", "rt-imp", "--from", tmp_path / "m", "--pretrain-tokens", "100000000", "--store", parent.root)
    assert code == 0, err
    with pytest.raises(ConfigError, match="'rt-imp' was imported and its pre-training data is not in the store"):
        retrain_config(parent, UpdateRequest(name="rt-y", parent="rt-imp", data=["prose"], paradigm="retrain", steps=2))
