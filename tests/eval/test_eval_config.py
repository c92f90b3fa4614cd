"""A run's evaluations as YAML, and the evaluator objects built from them."""

import re

import pytest
import torch

from renewlm.config import validate
from renewlm.distributed import Dist
from renewlm.errors import ConfigError
from renewlm.eval.cadence import Every, LogSpaced
from renewlm.eval.config import (
    Evaluations,
    HeldOutSpec,
    build_evaluators,
    default_evaluations,
)
from renewlm.eval.evaluator import HeldOut


def test_the_yaml_of_the_issue_validates():
    specs = validate(Evaluations, [
        {"kind": "heldout", "cadence": {"every": 50}},
        {"kind": "lm_eval", "tasks": ["hellaswag"], "limit": 100, "cadence": {"log": 8}},
    ], "run.yaml")
    assert specs[0].name == "eval" and specs[0].cadence == Every(every=50)
    assert specs[1].name == "lm_eval" and specs[1].cadence == LogSpaced(log=8) and specs[1].batch_size == "auto"
    assert default_evaluations(25) == [HeldOutSpec(kind="heldout", cadence=Every(every=25))]


@pytest.mark.parametrize("bad, says", [
    ([{"kind": "heldout"}, {"kind": "heldout"}], "evaluator name 'eval' is used twice"),
    ([{"kind": "lm_eval", "tasks": []}], "0.lm_eval.tasks"),
    ([{"kind": "lm_eval", "tasks": ["x"], "limit": 0}], "0.lm_eval.limit"),
    ([{"kind": "heldout", "cadence": {"log": 1}}], "cadence.LogSpaced.log"),
    ([{"kind": "perplexity"}], "0: Input tag 'perplexity'"),
])
def test_bad_evaluations_name_the_field(bad, says):
    with pytest.raises(ConfigError, match=re.escape(says)) as e:
        validate(Evaluations, bad, "run.yaml")
    assert str(e.value).startswith("run.yaml: ")


def test_build_makes_held_out_evaluators_and_refuses_lm_eval_on_several_processes():
    specs = validate(Evaluations, [{"kind": "heldout", "name": "often", "cadence": {"every": 5}}, {"kind": "lm_eval", "tasks": ["x"]}], "run")
    common = {"corpora": {}, "tokenizer": None, "seq_len": 8, "eval_tokens": 64, "micro_batch": 2}
    (only,) = build_evaluators(specs[:1], dist_=Dist.single(torch.device("cpu")), **common)
    assert isinstance(only, HeldOut) and only.name == "often" and only.due(10, 12) and not only.due(11, 12)
    with pytest.raises(ConfigError, match="need a single-process run"):
        build_evaluators(specs, dist_=Dist(rank=0, world=2, local_rank=0, device=torch.device("cpu")), **common)
