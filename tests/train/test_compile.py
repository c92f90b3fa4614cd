"""torch.compile in training: per decoder layer, bf16 under FSDP2, no recompiles across train and eval."""

import pytest
import torch

from renewlm.train import loop
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from tests.train.conftest import run_dict


@pytest.mark.slow
def test_compiled_bf16_training_compiles_each_graph_once_across_train_steps_and_evaluations(train_store, monkeypatch):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    graphs_after: dict[int, int] = {}
    real_step = loop.train_step

    def counting(run, step, pending):
        real_step(run, step, pending)
        graphs_after[step] = counters["stats"]["unique_graphs"]

    monkeypatch.setattr(loop, "train_step", counting)
    # Evaluations at steps 0, 2, 4 and 6 (with a remainder batch padded to the micro-batch), train steps between.
    cfg = run_dict("compiled", steps=6, eval_every=2, log_every=2, compile=True, precision="bf16", eval_tokens=32 * 5)
    info = train(validate_run(cfg), train_store, fresh=True)
    torch._dynamo.reset()
    # One graph for the layers in evaluation (no grad) and one in training, both made by the first
    # evaluation and the first step; every later step and evaluation reuses them.
    assert graphs_after[0] >= 1
    assert graphs_after[5] == graphs_after[1], graphs_after
    assert counters["stats"]["unique_graphs"] == graphs_after[1]  # the final evaluation compiled nothing either
    records = [r for r in read_metrics(train_store.path("runs", "compiled") / "metrics.jsonl") if "loss" in r]
    assert len(records) == 6 and records[-1]["loss"] < records[0]["loss"]
    assert set(info["losses"]) == {"prose"}


@pytest.mark.slow
def test_compiled_training_with_document_mask_tracks_the_uncompiled_run(store, make_corpus):
    from tests.conftest import sentences

    make_corpus("short", sentences(), val_fraction=0.1)
    masked = {"mixture": {"phases": [{"corpora": {"short": 1.0}}]}, "steps": 4, "log_every": 1, "document_mask": True}
    eager = train(validate_run(run_dict("dm-eager", **masked)), store, fresh=True)
    torch._dynamo.reset()
    compiled = train(validate_run(run_dict("dm-compiled", compile=True, **masked)), store, fresh=True)  # inductor on CPU
    torch._dynamo.reset()
    steps = [[r["loss"] for r in read_metrics(store.path("runs", n) / "metrics.jsonl") if "loss" in r] for n in ("dm-eager", "dm-compiled")]
    assert len(steps[0]) == 4 and steps[1] == pytest.approx(steps[0], rel=1e-4)
    assert compiled["losses"]["short"] == pytest.approx(eager["losses"]["short"], rel=1e-4)
