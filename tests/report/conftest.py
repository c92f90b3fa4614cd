"""Stores for the report tests.

    report_store   session store: two real tiny runs (`tiny-base` on prose, `tiny-code` updated from it on
                   code, so its held-out curves show forgetting) beside a synthetic switch series of 3
                   releases, a continued branch, a soup, an import and a sweep (renewlm/examples/synthetic.py)
    synthetic      a fresh store per test with only the synthetic records (no training)
"""

import shutil

import pytest

from renewlm.store import Store
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.examples.synthetic import add_synthetic
from tests.train.conftest import run_dict


@pytest.fixture(scope="session")
def report_store(train_store, tmp_path_factory) -> Store:
    root = tmp_path_factory.mktemp("report-store") / "store"
    # A copy: train_store is shared by other test folders, which list its versions.
    shutil.copytree(train_store.root / "tokenizers", root / "tokenizers")
    shutil.copytree(train_store.root / "corpora", root / "corpora")
    store = Store(root)
    train(validate_run(run_dict("tiny-base", steps=6, eval_every=2)), store, fresh=True)
    update = run_dict("tiny-code", steps=6, eval_every=2, parent="tiny-base", mixture={"phases": [{"corpora": {"code": 1.0}}]})
    del update["preset"], update["tokenizer"]
    train(validate_run(update), store, fresh=True)
    add_synthetic(store, releases=3, steps=60)
    return store


@pytest.fixture
def synthetic(tmp_path) -> Store:
    store = Store(tmp_path / "store")
    add_synthetic(store, releases=3, steps=40)
    return store
