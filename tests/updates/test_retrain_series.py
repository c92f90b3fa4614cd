"""A series of retrains (Wang et al.'s PTFS): each release retrained from the one before reads every
corpus so far for the tokens it gave as new data, once: not again for every retrain that read it since."""

from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.updates.paradigm import run_update
from renewlm.updates.request import UpdateRequest
from renewlm.updates.retrain import retrain_config
from tests.train.conftest import run_dict


def test_a_retrain_of_a_retrain_counts_each_corpus_once(train_store):
    """rs-base: 4 steps of prose (1,024 tokens); rs-r2: retrained on prose and 4 steps' worth of code."""
    if not train_store.exists("versions", "rs-r2"):
        train(validate_run(run_dict("rs-base", steps=4)), train_store, fresh=True)
        run_update(train_store, UpdateRequest(name="rs-r2", parent="rs-base", data=["code"], paradigm="retrain", steps=4))
    cfg = retrain_config(train_store, UpdateRequest(name="rs-r3", parent="rs-r2", data=["code:1"], paradigm="retrain", steps=2))
    # rs-base read prose 1,024 as new data, rs-r2 code 1,024 (and prose again, from random weights); the
    # update adds 512 of code. Counting rs-r2's prose too would give prose 2,048: the oldest data would gain
    # share with every release.
    corpora = cfg.mixture.phases[0].corpora
    assert corpora["prose"] == 1024 and corpora["code"] == 1024 + 512
    assert cfg.tokens == 1024 + 1024 + 512  # the data of the lineage once, and the update
