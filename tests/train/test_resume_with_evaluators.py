"""A run whose evaluators include lm-eval tasks still resumes bitwise after SIGKILL: lm-eval reseeds
Python's, numpy's and torch's generators, and the evaluator puts them back."""

import json
import signal

import pytest
import yaml

from renewlm.train.metrics import read_metrics
from tests.train.conftest import run_dict
from tests.train.test_resume import finish, renewlm, wait_for, weights

pytest.importorskip("lm_eval")

QUESTIONS = [
    {"q": "Water is", "choices": ["wet", "dry"], "label": 0},
    {"q": "Fire is", "choices": ["cold", "hot"], "label": 1},
    {"q": "The sky is", "choices": ["up", "down"], "label": 0},
]


def _task(folder):
    (folder / "qa.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (folder / "resume_qa.yaml").write_text(f"""task: resume_qa
dataset_path: json
dataset_kwargs: {{data_files: {{test: {folder / 'qa.jsonl'}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{q}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list: [{{metric: acc, aggregation: mean, higher_is_better: true}}]
""")
    return folder


# slow (20-50 s on 2 cores): outside CI, which keeps the suite under 15 minutes; run with pytest -m slow
@pytest.mark.slow
def test_sigkill_with_an_lm_eval_evaluator_resumes_bitwise(train_store, tmp_path):
    tasks = _task(tmp_path)
    evaluations = [
        {"kind": "heldout", "cadence": {"every": 10}},
        {"kind": "lm_eval", "tasks": ["resume_qa"], "include_paths": [str(tasks)], "cadence": {"log": 3}},
    ]

    def write(name):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(run_dict(name, steps=40, checkpoint_every=5, evaluations=evaluations)))
        return path

    finish(renewlm(train_store, "train", str(write("lme-whole")), "--fresh"))
    run = write("lme-killed")
    proc = renewlm(train_store, "train", str(run), "--fresh")
    checkpoints = train_store.path("runs", "lme-killed") / "checkpoints"
    wait_for(lambda: checkpoints.glob("step-*/manifest.json"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = finish(renewlm(train_store, "train", str(run)))
    assert "resuming run lme-killed from step" in out
    a, b = weights(train_store, "lme-whole"), weights(train_store, "lme-killed")
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    results = {}
    for name in ("lme-whole", "lme-killed"):
        records = read_metrics(train_store.path("runs", name) / "metrics.jsonl")
        results[name] = [(r["step"], r["lm_eval"]) for r in records if "lm_eval" in r]
    assert [step for step, _ in results["lme-whole"]] == [0, 5, 40]  # 3 log-spaced evaluations, first and last included
    assert all(set(acc) == {"resume_qa/acc"} and acc["resume_qa/acc"] in (0, 1 / 3, 2 / 3, 1) for _, acc in results["lme-whole"])
    assert results["lme-killed"] == results["lme-whole"]
