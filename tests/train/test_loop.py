"""The training loop in one process: versions, metrics, starting points, guards."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from renewlm.data.corpus import Corpus
from renewlm.errors import ConfigError, TrainingError
from renewlm.train.config import validate_run
from renewlm.distributed import Dist
from renewlm.eval.heldout import heldout_loss
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from tests.train.conftest import run_dict


def test_pretrain_writes_a_version_that_from_pretrained_loads_with_the_trained_weights(train_store):
    schedule = {"name": "cosine", "peak_lr": 3e-3, "warmup_fraction": 0.25}
    info = train(validate_run(run_dict("pre", schedule=schedule)), train_store, fresh=True)
    folder = train_store.path("versions", "pre")
    meta = json.loads((folder / "version.json").read_text())
    assert meta["kind"] == "pretrain" and meta["parents"] == []
    assert meta["steps"] == 8 and meta["tokens"] == 8 * 256 and meta["flops"] > 0
    assert meta["corpora"] == ["prose"]
    assert set(meta["losses"]) == {"prose"}

    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.eos_token_id is not None
    # The exported weights are the trained ones: they reproduce the run's final held-out loss.
    single = Dist.single(torch.device("cpu"))
    loss = heldout_loss(model, Corpus.open(train_store, "prose").val, seq_len=32, max_tokens=1024, micro_batch=2, dist_=single)
    assert loss == pytest.approx(info["losses"]["prose"], abs=1e-5)

    records = read_metrics(train_store.path("runs", "pre") / "metrics.jsonl")
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 9))
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert all(r["tokens_per_second"] > 0 and r["grad_norm"] > 0 for r in steps)
    evals = [r for r in records if "eval" in r]
    assert [r["step"] for r in evals] == [0, 8]
    # The LR the loop used is the schedule's: a 2-step warmup to the peak, then cosine towards 0.1·peak.
    assert [r["lr"] for r in steps[:2]] == pytest.approx([1.5e-3, 3e-3])
    assert 3e-4 < steps[-1]["lr"] < steps[2]["lr"] == 3e-3


def test_update_evaluates_the_lineage_and_loads_weights_only(train_store):
    train(validate_run(run_dict("base2")), train_store, fresh=True)
    cfg = run_dict("child2", preset=None, tokenizer=None, parent="base2", mixture={"phases": [{"corpora": {"code": 1.0}}]}, steps=4)
    info = train(validate_run(cfg), train_store, fresh=True)
    assert info["start"] == "weights"
    assert set(info["losses"]) == {"code", "prose"}  # prose: forgetting shows during the update
    meta = json.loads((train_store.path("versions", "child2") / "version.json").read_text())
    assert meta["parents"] == [{"name": "base2", "weight": 1.0}] and meta["kind"] == "release"
    # Weights only: the first step is the schedule's warmup from step 0.
    first = read_metrics(train_store.path("runs", "child2") / "metrics.jsonl")
    assert [r for r in first if "loss" in r][0]["step"] == 1


def test_update_from_a_local_folder_of_another_architecture(train_store, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(train_store.path("tokenizers", "tok"))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    cfg = run_dict("from-gpt2", preset=None, tokenizer=None, parent=str(tmp_path / "gpt2"), steps=3)
    info = train(validate_run(cfg), train_store, fresh=True)
    model = AutoModelForCausalLM.from_pretrained(train_store.path("versions", "from-gpt2"))
    assert model.config.model_type == "gpt2"
    assert info["steps"] == 3 and info["losses"]["prose"] > 0


def test_a_tokenizer_that_does_not_match_the_corpus_fails_before_training(train_store, tmp_path):
    from renewlm.data.tokenizer import train_tokenizer

    other = tmp_path / "other.txt"
    other.write_text("completely different text for another tokenizer\n" * 200)
    train_tokenizer(train_store, "other-tok", [other], 300, overwrite=True)
    with pytest.raises(ConfigError, match="prepared with another tokenizer") as info:
        train(validate_run(run_dict("mismatch", tokenizer="other-tok")), train_store, fresh=True)
    assert "--tokenizer other-tok" in str(info.value)
    assert not train_store.exists("versions", "mismatch")


def test_preflight_reports_every_problem_at_once(train_store):
    cfg = run_dict("bad", tokenizer="no-such-tok", mixture={"phases": [{"corpora": {"nope": 1.0}}]}, micro_batch=3)
    with pytest.raises(ConfigError) as info:
        train(validate_run(cfg), train_store)
    text = str(info.value)
    assert "no-such-tok" in text and "'nope'" in text and "micro-batches of 3" in text


def test_non_finite_losses_skip_steps_then_stop_with_the_last_checkpoint_kept(train_store):
    cfg = run_dict("nan", schedule={"name": "constant", "lr": 1e30}, steps=20, checkpoint_every=1, max_bad_steps=3)
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        train(validate_run(cfg), train_store, fresh=True)
    records = [r for r in read_metrics(train_store.path("runs", "nan") / "metrics.jsonl") if "loss" in r]
    assert records[-1]["skipped_steps"] == 3
    checkpoints = sorted(p.name for p in (train_store.path("runs", "nan") / "checkpoints").iterdir())
    assert checkpoints and all(name.startswith("step-") for name in checkpoints)
    assert not train_store.exists("versions", "nan")


def test_rerun_with_other_settings_needs_fresh(train_store):
    train(validate_run(run_dict("again", steps=2)), train_store, fresh=True)
    train_store.path("versions", "again")  # exists now; remove it to rerun under the same name
    import shutil

    shutil.rmtree(train_store.path("versions", "again"))
    with pytest.raises(ConfigError, match="with other settings \\(steps\\); rerun with --fresh"):
        train(validate_run(run_dict("again", steps=3)), train_store)
    info = train(validate_run(run_dict("again", steps=3)), train_store, fresh=True)
    assert info["steps"] == 3


def test_path_switching_branch_continues_the_trunk_optimizer_state(train_store, tmp_path):
    trunk = run_dict("trunk", kind="trunk", schedule={"name": "wsd", "peak_lr": 3e-3, "decay_fraction": 0.0}, steps=4)
    train(validate_run(trunk), train_store, fresh=True)
    folder = train_store.path("versions", "trunk")
    assert (folder / "optimizer").is_dir()
    assert json.loads((folder / "version.json").read_text())["optimizer_state"] is True
    branch = run_dict("release", preset=None, tokenizer=None, parent="trunk", load_optimizer=True,
                      schedule={"name": "branch", "start_lr": 3e-3, "decay_fraction": 0.5}, steps=4, checkpoint_every=2,
                      keep_checkpoints_when_finished=True)
    info = train(validate_run(branch), train_store, fresh=True)
    assert info["start"] == "weights+optimizer"
    # At the checkpoint after 2 steps, AdamW's step count continues from the trunk's 4: its moments were carried over.
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    checkpoint = next((train_store.path("runs", "release") / "checkpoints").glob("step-*"))
    dcp_to_torch_save(checkpoint, tmp_path / "ckpt.pt")
    optim = torch.load(tmp_path / "ckpt.pt", weights_only=False)["optim"]["state"]
    assert {float(v["step"]) for v in optim.values()} == {6.0}
    with pytest.raises(ConfigError, match="is not a version with optimizer state"):
        bad = run_dict("bad-branch", preset=None, tokenizer=None, parent="release", load_optimizer=True, steps=2)
        train(validate_run(bad), train_store, fresh=True)
    assert not train_store.path("runs", "bad-branch").exists()  # refused in preflight, before any folder or model


def test_activation_checkpointing_gives_the_same_losses_and_tensorboard_gets_the_metrics(train_store):
    plain = train(validate_run(run_dict("ac-off", steps=3)), train_store, fresh=True)
    recomputed = train(validate_run(run_dict("ac-on", steps=3, activation_checkpointing=True, trackers=["tensorboard"])), train_store, fresh=True)
    a = [r["loss"] for r in read_metrics(train_store.path("runs", "ac-off") / "metrics.jsonl") if "loss" in r]
    b = [r["loss"] for r in read_metrics(train_store.path("runs", "ac-on") / "metrics.jsonl") if "loss" in r]
    assert b == pytest.approx(a, abs=1e-5)
    assert recomputed["losses"]["prose"] == pytest.approx(plain["losses"]["prose"], abs=1e-5)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(train_store.path("runs", "ac-on") / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "heldout/prose"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]


def test_data_offset_continues_the_stream_where_another_run_stopped(train_store):
    """Two runs of 3 steps, the second with data_offset = 3 batches, read what one run of 6 steps reads."""
    whole = train(validate_run(run_dict("off-whole", steps=6)), train_store, fresh=True)
    train(validate_run(run_dict("off-a", steps=3)), train_store, fresh=True)
    train(validate_run(run_dict("off-b", steps=3, data_offset=3 * 8)), train_store, fresh=True)
    sums = {n: [r["batch_token_sum"] for r in read_metrics(train_store.path("runs", n) / "metrics.jsonl") if "loss" in r]
            for n in ("off-whole", "off-a", "off-b")}
    assert sums["off-a"] + sums["off-b"] == sums["off-whole"]
    assert json.loads((train_store.path("versions", "off-b") / "version.json").read_text())["corpus_tokens"] == {"prose": 3 * 256}
    assert whole["steps"] == 6
