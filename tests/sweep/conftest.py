"""A tiny parent version for sweep tests: the tiny preset pre-trained for 3 steps on prose."""

from renewlm.train.config import validate_run
from renewlm.train.loop import train
from tests.train.conftest import run_dict

BASE = "swp-base"


def base_version(store) -> str:
    """`swp-base` in the (session-wide) train store, trained once."""
    if not store.exists("versions", BASE):
        train(validate_run(run_dict(BASE, steps=3)), store)
    return BASE
