"""Bad input to `renewlm train` / `update`: one sentence, exit 2, and no run folder or version left behind."""

import json

import pytest
import torch
import yaml
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def gpt2_64(train_store, tmp_path_factory):
    """A GPT-2 folder whose model has 64 positions, saved as a user would, with the store's tokenizer."""
    folder = tmp_path_factory.mktemp("gpt2-64") / "gpt2"
    tokenizer = AutoTokenizer.from_pretrained(train_store.path("tokenizers", "tok"))
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_update_of_an_import_takes_its_sequence_length_from_the_model(train_store, gpt2_64, cli):
    if not train_store.exists("versions", "imp64"):
        code, _, err = cli("import", "imp64", "--from", gpt2_64, "--store", train_store.root)
        assert code == 0, err
    cfg = update_config(train_store, UpdateRequest(name="imp-up", parent="imp64", data=["prose"], steps=1))
    assert cfg.seq_len == 64 and cfg.batch_tokens % 64 == 0
    code, out, err = cli("update", "imp-up", "--from", "imp64", "--data", "prose", "--steps", "1", "--seq-len", "128",
                         "--batch-tokens", "256", "--store", train_store.root)
    assert code == 2 and "seq_len 128 is longer than the 64 positions" in err and "Traceback" not in err + out
    assert not train_store.path("runs", "imp-up").exists()
    code, out, err = cli("update", "imp-up", "--from", "imp64", "--data", "prose", "--steps", "1", "--seq-len", "64",
                         "--batch-tokens", "256", "--store", train_store.root)
    assert code == 0, err  # the corrected command runs without --fresh
    assert "plan: 1 steps × 256 tokens = 256 tokens" in out


def test_a_run_that_fails_before_a_checkpoint_leaves_no_run_folder(train_store, monkeypatch):
    from renewlm.train import loop

    def broken(run):
        assert run.folder.is_dir()  # the folder was made...
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loop, "_loop", broken)
    with pytest.raises(RuntimeError):
        loop.train(validate_run(run_dict("doomed")), train_store, fresh=True)
    assert not train_store.path("runs", "doomed").exists()  # ...and is gone


@pytest.mark.parametrize("flag, value, says", [
    ("--replay", "-0.5", "--replay must be a share"), ("--replay", "nan", "--replay must be a share"),
    ("--seq-len", "0", "--seq-len must be a positive"), ("--batch-tokens", "0", "--batch-tokens must be a positive"),
    ("--micro-batch", "0", "--micro-batch must be a positive"), ("--data", "code:0", "weight after ':'"),
])
def test_update_refuses_values_it_used_to_replace_silently(train_store, cli, flag, value, says):
    base = "bad-base"
    if not train_store.exists("versions", base):
        from renewlm.train.loop import train

        train(validate_run(run_dict(base, steps=1)), train_store, fresh=True)
    args = ["update", "bad-up", "--from", base, "--steps", "1", "--store", train_store.root, flag, value]
    if flag != "--data":
        args += ["--data", "code"]
    code, out, err = cli(*args)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not train_store.path("runs", "bad-up").exists() and not train_store.exists("versions", "bad-up")


def test_absurd_lengths_are_refused_naming_the_bound(train_store, cli, tmp_path):
    # 1e18 tokens of the tiny preset would plan 3.9e15 steps, and its 1% warmup would start at LR 1e-16.
    run = tmp_path / "huge.yaml"
    run.write_text(yaml.safe_dump(run_dict("huge", steps=None, tokens=1e18)))  # `tokens: 1.0e+18`, a YAML float
    code, out, err = cli("train", run, "--store", train_store.root)
    assert code == 2 and "tokens 1e18 is above the bound of 1e15 tokens for one run" in err and len(err.strip().splitlines()) == 1, err
    assert not train_store.path("runs", "huge").exists()
    assert validate_run(run_dict("fine", steps=None, tokens=2e9)).tokens == 2_000_000_000  # `tokens: 2e9` is a count
    for overrides, says in (
        ({"steps": 10**9}, "would take 1,000,000,000 optimizer steps, above the bound of 100,000,000"),
        ({"steps": None, "tokens": 10**14}, "would take 390,625,000,000 optimizer steps"),  # 256 tokens a step
        ({"seq_len": 2**21, "batch_tokens": 2**21}, "seq_len 2,097,152 is above the bound of 1,048,576 tokens per sequence"),
    ):
        with pytest.raises(ConfigError, match=says):
            validate_run(run_dict("huge", **overrides))


def test_run_identity_is_one_file_and_a_missing_yaml_copy_is_rewritten(train_store):
    from renewlm.train.loop import train

    train(validate_run(run_dict("ident", steps=2, checkpoint_every=1, keep_checkpoints_when_finished=True)), train_store, fresh=True)
    folder = train_store.path("runs", "ident")
    identity = json.loads((folder / "run.json").read_text())
    assert identity["run_id"].startswith("ident-") and identity["config"]["steps"] == 2
    # Killed between the identity and its YAML copy: the rerun resumes and rewrites the copy.
    (folder / "run.yaml").unlink()
    import shutil

    shutil.rmtree(train_store.path("versions", "ident"))
    info = train(validate_run(run_dict("ident", steps=2, checkpoint_every=1, keep_checkpoints_when_finished=True)), train_store)
    assert (folder / "run.yaml").is_file() and info["run_id"] == identity["run_id"]
    meta = json.loads((train_store.path("versions", "ident") / "version.json").read_text())
    assert meta["start"] == "fresh" and meta["resumed_at_steps"] == [1]  # a finished run checkpoints no last step


def test_a_run_recorded_before_a_new_config_field_still_resumes(train_store):
    """An upgrade that adds a RunConfig field (with a default) must not strand interrupted runs."""
    from renewlm.train.loop import train

    train(validate_run(run_dict("old-run", steps=2, checkpoint_every=1, keep_checkpoints_when_finished=True)), train_store, fresh=True)
    folder = train_store.path("runs", "old-run")
    identity = json.loads((folder / "run.json").read_text())
    del identity["config"]["data_offset"]  # as written before the field existed
    (folder / "run.json").write_text(json.dumps(identity))
    import shutil

    shutil.rmtree(train_store.path("versions", "old-run"))
    info = train(validate_run(run_dict("old-run", steps=2, checkpoint_every=1, keep_checkpoints_when_finished=True)), train_store)
    assert info["resumed_at_steps"] == [1]


def test_a_run_recorded_as_paradigm_single_resumes_as_continue(train_store):
    """Run folders written when a run file's `paradigm: continue` was spelled `single` resume, not refused as changed."""
    from renewlm.train.loop import train

    run = run_dict("single-run", steps=2, checkpoint_every=1, keep_checkpoints_when_finished=True)
    train(validate_run(run), train_store, fresh=True)
    folder = train_store.path("runs", "single-run")
    identity = json.loads((folder / "run.json").read_text())
    assert identity["config"]["paradigm"] == "continue"  # the word written today
    identity["config"]["paradigm"] = "single"  # as written before
    (folder / "run.json").write_text(json.dumps(identity))
    recorded = yaml.safe_load((folder / "run.yaml").read_text())
    (folder / "run.yaml").write_text(yaml.safe_dump({**recorded, "paradigm": "single"}))
    import shutil

    shutil.rmtree(train_store.path("versions", "single-run"))
    from renewlm.train.config import load_run

    info = train(load_run(folder / "run.yaml"), train_store)  # `renewlm train runs/NAME/run.yaml`
    assert info["resumed_at_steps"] == [1] and info["run_id"] == identity["run_id"]


def test_a_run_named_like_an_existing_version_in_another_case_is_refused_before_any_compute(store):
    from renewlm.errors import StoreError
    from renewlm.train.loop import train

    (store.root / "versions" / "news-v1").mkdir(parents=True)
    with pytest.raises(StoreError, match="version name 'News-v1' reads like the existing 'news-v1'"):
        train(validate_run(run_dict("News-v1")), store)
    assert not (store.root / "runs").exists() or list((store.root / "runs").iterdir()) == []


@pytest.mark.parametrize("kind", ["bloom", "own code"])
def test_document_mask_on_a_model_that_cannot_take_it_is_refused_before_any_compute(train_store, cli, tmp_path, kind):
    from transformers import BloomConfig, BloomForCausalLM, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(train_store.path("tokenizers", "tok"))
    torch.manual_seed(0)
    if kind == "bloom":  # ALiBi from the token index: position ids cannot mask it (tests/model/test_documents.py)
        model = BloomForCausalLM(BloomConfig(vocab_size=len(tokenizer), hidden_size=16, n_layer=1, n_head=2))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=1, num_attention_heads=2))
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if kind == "own code":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "modeling.Model"}}))
    run = tmp_path / "masked.yaml"
    run.write_text(yaml.safe_dump(run_dict("masked", preset=None, tokenizer=None, parent=str(folder), document_mask=True,
                                           trust_remote_code=kind == "own code")))
    code, out, err = cli("train", run, "--store", train_store.root)
    says = "is a 'bloom' model, not one whose attention" if kind == "bloom" else "runs its own model code (auto_map"
    assert code == 2 and says in err and "set document_mask: false" in err and "Traceback" not in err + out, err
    assert not train_store.path("runs", "masked").exists()
