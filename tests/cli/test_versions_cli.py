"""The version commands' CLI surface: import flags, export safety, -h, --version, quiet progress bars."""

import json
import subprocess
import sys

import pytest
import typer

from renewlm import __version__
from renewlm.cli.app import app
from tests.conftest import tiny_model_folder


@pytest.fixture
def folder(store, tmp_path, capsys):
    """A tiny GPT-2 folder with 128 positions and the store's tokenizer."""
    path = tiny_model_folder(store, tmp_path / "gpt2")
    capsys.readouterr()
    return path


def command_paths(group=None, prefix=()):
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from command_paths(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *command_paths()], ids=lambda p: " ".join(p) or "renewlm")
def test_every_command_takes_h_for_help(cli, path):
    code, out, err = cli(*path, "-h")
    assert code == 0 and "Usage:" in out and "--help" in out, err


def test_version_flag(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out == f"renewlm {__version__}\n"


def test_import_flags_reach_the_record(cli, store, folder):
    code, out, err = cli("import", "base", "--from", folder, "--pretrain-tokens", "2000000", "--peak-lr", "6e-4",
                         "--final-lr", "6e-5", "--store", store.root)
    assert code == 0, err
    meta = json.loads((store.path("versions", "base") / "version.json").read_text())
    assert meta["tokens"] == 2_000_000 and meta["flops"] > 6 * 2_000_000 and meta["max_positions"] == 128
    assert meta["schedule"] == {"name": "import", "peak_lr": 6e-4, "min_lr": 6e-5}
    code, out, _ = cli("show", "base", "--store", store.root)
    assert "own 2,000,000 tokens" in out
    code, _, err = cli("import", "other", "--from", folder, "--peak-lr", "1e-4", "--final-lr", "1e-3", "--store", store.root)
    assert code == 2 and err.count("\n") == 1 and "above --peak-lr" in err and not store.exists("versions", "other")


def test_export_to_the_store_is_refused_and_the_store_kept(cli, store, folder):
    assert cli("import", "base", "--from", folder, "--store", store.root)[0] == 0
    before = sorted(p.relative_to(store.root) for p in store.root.rglob("*"))
    for target in (store.root, store.root.parent, store.root / "versions"):
        code, out, err = cli("export", "base", "--to", target, "--overwrite", "--store", store.root)
        assert code == 2 and out == "" and err.count("\n") == 1 and "the store" in err, err
    assert sorted(p.relative_to(store.root) for p in store.root.rglob("*")) == before
    elsewhere = store.root.parent / "no" / "such" / "export"  # a typo: no folders are made up to it
    code, out, err = cli("export", "base", "--to", elsewhere, "--store", store.root)
    assert code == 2 and "nor the folder above it exists" in err and not (store.root.parent / "no").exists(), err


def test_no_progress_bars_when_output_is_not_a_terminal(store, folder):
    done = subprocess.run([sys.executable, "-m", "renewlm", "import", "base", "--from", str(folder), "--store", str(store.root)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "it/s" not in done.stderr + done.stdout and "Loading weights" not in done.stderr, done.stderr
