"""MFU's denominator: a device's peak by its exact name, or the run's `peak_tflops`."""

import torch

from renewlm.model.flops import PEAKS, peak_flops
from renewlm.train.config import validate_run
from tests.train.conftest import run_dict


def test_a_given_peak_wins_and_a_cpu_has_none_otherwise():
    assert peak_flops(torch.device("cpu")) is None
    assert peak_flops(torch.device("cpu"), 1.5) == 1.5e12


def test_parts_of_one_family_keep_their_own_peaks():
    assert PEAKS["NVIDIA H100 80GB HBM3"] > PEAKS["NVIDIA H100 NVL"] > PEAKS["NVIDIA H100 PCIe"]


def test_a_run_reports_mfu_at_the_peak_it_is_given(train_store):
    from renewlm.train.loop import train
    from renewlm.train.metrics import read_metrics

    train(validate_run(run_dict("mfu", steps=2, peak_tflops=0.5)), train_store, fresh=True)
    steps = [r for r in read_metrics(train_store.path("runs", "mfu") / "metrics.jsonl") if "loss" in r]
    for r in steps:
        assert 0 < r["mfu"] < 1
