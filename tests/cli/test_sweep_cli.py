"""`renewlm sweep`: bad input as one sentence and exit 2 with nothing written; --emit for a Slurm job array
whose run files `renewlm train` accepts; --collect before and after a point finished."""

import shutil
import subprocess
from pathlib import Path

import pytest

from renewlm.sweep.plan import SweepSettings, duration_points, lr_points
from renewlm.train.config import load_run
from tests.sweep.conftest import base_version

TINY = ["--lrs", "1e-3,3e-3", "--tokens", "256", "--durations", "256,512", "--eval-tokens", "512"]


@pytest.fixture
def swept_store(train_store):
    base_version(train_store)
    return train_store


@pytest.fixture
def other_tokenizer_corpus(swept_store, make_corpus, store):
    """A corpus prepared with the suite's other tokenizer (1,000 ids), copied into the train store."""
    name = "swp-other-tok"
    if not swept_store.exists("corpora", name):
        make_corpus(name, ["some text " * 50] * 20)
        shutil.copytree(store.path("corpora", name), swept_store.path("corpora", name))
    return name


@pytest.mark.parametrize("args, says", [
    (["--lrs", ""], "LR grid is empty"),
    (["--lrs", "1e-3,-1e-4"], "not a positive learning rate"),
    (["--lrs", "1e-3,abc"], "is not a number"),
    (["--tokens", "0"], "--tokens 0 must be a positive"),
    (["--tokens", "1.5"], "not a whole number"),
    (["--durations", "512,256"], "must increase strictly"),
    (["--durations", "0,256"], "must be positive"),
    (["--durations", "100,200"], "shorter than one batch"),
    (["--durations", "256,300"], "same number of"),
    (["--decay-fraction", "0"], "--decay-fraction"),
    (["--seed-repeats", "-1"], "--seed-repeats"),
])
def test_bad_grids_are_refused_in_one_sentence_and_write_nothing(cli, swept_store, args, says):
    flags = dict(zip(TINY[::2], TINY[1::2]))
    flags.update(dict(zip(args[::2], args[1::2])))
    code, _out, err = cli("sweep", "swp-bad", "--from", "swp-base", "--data", "code", *sum(flags.items(), ()),
                         "--store", swept_store.root)
    assert code == 2 and says in err and err.count("\n") == 1 and "Traceback" not in err
    assert not swept_store.path("sweeps", "swp-bad").exists()
    assert not [n for n in swept_store.names("runs") if n.startswith("swp-bad")]


@pytest.mark.parametrize("args, says", [
    (["--from", "no-such-version", "--data", "code"], "is not a version in the store"),
    (["--from", "swp-base", "--data", "no-such-corpus"], "is not a corpus in the store"),
    (["--from", "swp-base", "--data", "code", "--data", "code"], "twice"),
    (["--data", "code"], "does not exist yet"),
])
def test_unknown_versions_and_corpora_are_refused(cli, swept_store, args, says):
    code, _, err = cli("sweep", "swp-bad", *args, *TINY, "--store", swept_store.root)
    assert code == 2 and says in err and not swept_store.path("sweeps", "swp-bad").exists()


def test_a_corpus_of_another_tokenizer_is_refused(cli, swept_store, other_tokenizer_corpus):
    code, _, err = cli("sweep", "swp-bad", "--from", "swp-base", "--data", other_tokenizer_corpus, *TINY,
                       "--store", swept_store.root)
    assert code == 2 and "another tokenizer" in err and not swept_store.path("sweeps", "swp-bad").exists()


def test_a_corpus_with_no_heldout_split_is_refused_with_the_fix(cli, swept_store, tmp_path):
    from renewlm.data.prepare import prepare
    from tests.conftest import prose_texts, write_jsonl

    if not swept_store.exists("corpora", "swp-no-val"):
        prepare(swept_store, "swp-no-val", [write_jsonl(tmp_path / "t.jsonl", prose_texts()[:5])], "tok", val_fraction=0)
    code, _, err = cli("sweep", "swp-bad", "--from", "swp-base", "--data", "swp-no-val", *TINY, "--store", swept_store.root)
    assert code == 2 and "has no held-out split" in err and "--val-fraction above 0" in err
    assert not swept_store.path("sweeps", "swp-bad").exists()


def test_collect_of_an_unknown_sweep_is_refused(cli, swept_store):
    code, _, err = cli("sweep", "swp-never", "--collect", "--store", swept_store.root)
    assert code == 2 and "no sweep named 'swp-never'" in err


def test_emit_writes_runs_renewlm_train_accepts_and_a_script_bash_accepts_then_collect(cli, swept_store, tmp_path):
    store, name, out = swept_store, "swp-emit", tmp_path / "emitted"
    code, stdout, err = cli("sweep", name, "--from", "swp-base", "--data", "code", "--data", "prose", *TINY,
                            "--emit", out, "--store", store.root)
    assert code == 0, err
    s = SweepSettings(parent="swp-base", data=["code", "prose"], lrs=[1e-3, 3e-3], tokens=256, durations=[256, 512],
                      eval_tokens=512)
    expected = [p for c in s.data for p in lr_points(store, name, s, c)]  # stage 1 only: no best LR yet
    files = sorted(out.glob("*.yaml"))
    assert sorted(f.stem for f in files) == sorted(p.name for p in expected)
    for p in expected:  # what `renewlm train` reads back is the sweep's own config, exactly
        assert load_run(out / f"{p.name}.yaml").model_dump(mode="json") == p.cfg.model_dump(mode="json")
    script = out / "sweep.sbatch"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    text = script.read_text()
    assert "#SBATCH --array=0-3" in text and text.count("renewlm train ") == 4 and "--store" in text
    assert not [n for n in store.names("versions") if n.startswith(name)]  # nothing ran

    code, _, err = cli("sweep", name, "--collect", "--store", store.root)
    assert code == 2 and "0 of 4 points" in err

    first = expected[0]
    code, _, err = cli("train", out / f"{first.name}.yaml", "--store", store.root)  # what one array task runs
    assert code == 0, err
    code, stdout, err = cli("sweep", name, "--collect", "--store", store.root)
    assert code == 0, err
    record = (store.path("sweeps", name) / "sweep.json").read_text()
    assert f'"version": "{first.name}"' in record and '"done": 1' in record
    assert "3 points still to run" in stdout

    weights = store.path("versions", first.name) / "model.safetensors"  # damaged on the cluster's disk, say
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    code, _, err = cli("sweep", name, "--collect", "--store", store.root)
    assert code == 2 and f"version '{first.name}': 'model.safetensors' does not match" in err and err.count("\n") == 1, err


def test_emit_to_a_file_or_under_a_missing_folder_is_refused_before_the_sweep_starts(cli, swept_store, tmp_path):
    (tmp_path / "runs.txt").write_text("a file, not a folder")
    for target, says in ((tmp_path / "runs.txt", "is a file; give a folder there"),
                         (tmp_path / "no" / "such", "nor the folder above it exists")):
        code, _, err = cli("sweep", "swp-file", "--from", "swp-base", "--data", "code", *TINY, "--emit", target,
                           "--store", swept_store.root)
        assert code == 2 and f"--emit {target}" in err and says in err and err.count("\n") == 1, err
    assert not swept_store.exists("sweeps", "swp-file") and sorted(p.name for p in tmp_path.iterdir()) == ["runs.txt"]


def test_emit_of_the_second_stage_chains_each_corpus_trunk_segments_and_decays(swept_store, tmp_path):
    """Once stage 1 is done, the duration sweep of a corpus is one array task: its segments and the
    decays off them in order (each needs the trunk before it)."""
    from renewlm.sweep.run import emit, resolve_settings
    from renewlm.train.loop import train

    store, name = swept_store, "swp-emit2"
    s = resolve_settings(store, name, {"parent": "swp-base", "data": ["code"], "lrs": [3e-3], "tokens": 256,
                                       "durations": [256, 512], "seed_repeats": 0, "eval_tokens": 512})
    for p in lr_points(store, name, s, "code"):
        if not store.exists("versions", p.name):
            train(p.cfg, store)
    files, script = emit(store, name, s, tmp_path)
    chain = duration_points(store, name, s, "code", 3e-3)
    assert [[f.stem for f in group] for group in files] == [[p.name for p in chain]]
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, check=False).returncode == 0
    task = " && ".join(f'renewlm train {f} --store "$STORE"' for f in files[0])
    assert f"  0) {task} ;;" in script.read_text().splitlines()


def test_the_table_prints_whole_cells_into_a_pipe(capsys):
    from renewlm.cli.sweep import show
    from renewlm.store import Store

    names = [f"heldout/a-corpus-with-a-long-name-{i}" for i in range(4)]
    entry = {"best_lr": 1e-3, "best_tokens": 512, "spread": 0.01, "in_mixture": True,
             "characterization": {n: {"verdict": v, "delta": d} for n, v, d in zip(names, ("helps", "hurts", "unchanged", "helps"), (-0.2, 0.1, 0.0, -0.3))}}
    record = {"parent": "base", "progress": {"done": 4, "planned": 4}, "cost": None, "suggested_mixture": None,
              "corpora": {"code": entry}}
    show(record, Store(Path("unused-store")), "s")
    out = capsys.readouterr().out
    assert all(f"{n} {d:+.3f}" in out for n, d in zip(names, (-0.2, 0.1, 0.0, -0.3))) and "…" not in out, out
