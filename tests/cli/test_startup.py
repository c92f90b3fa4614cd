"""Start-up: commands that only read records import neither torch nor transformers (~2 s of CPU before
the first line otherwise). Checked on the real entry point, `python -m renewlm`, with `-X importtime`,
which names every module a process imports."""

import subprocess
import sys
from pathlib import Path

import pytest

from renewlm.versions import import_version
from tests.conftest import prose_texts, tiny_model_folder

HEAVY = {"torch", "transformers"}
RECIPE = Path(__file__).parents[2] / "recipes" / "wsd-1-sqrt.yaml"


def heavy_imports(*args) -> tuple[subprocess.CompletedProcess, set[str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "renewlm", *map(str, args)],
                          capture_output=True, text=True, check=False)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, {name.split(".")[0] for name in names} & HEAVY


@pytest.fixture
def records(store, make_corpus, tmp_path):
    """A store with a corpus, a version and a mixture file: what the reading commands read."""
    import_version(store, "base", tiny_model_folder(store, tmp_path / "gpt2"))
    make_corpus("prose", prose_texts()[:20])
    mixture = tmp_path / "mix.yaml"
    mixture.write_text("phases:\n  - {corpora: {prose: 1}}\n")
    return store, mixture


def test_the_probe_sees_torch_when_a_command_loads_it(records):
    store, _ = records
    done, heavy = heavy_imports("sample", "base", "--prompt", "a", "--max-new-tokens", "1", "--store", store.root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert heavy == HEAVY


def test_reading_commands_import_neither_torch_nor_transformers(records):
    store, mixture = records
    s = ("--store", store.root)
    for args in (("--version",), ("-h",), ("eval", "-h"), ("corpora", *s), ("versions", *s), ("show", "base", *s),
                 ("plan", "--releases", "3", "--tokens-per-release", "1B", *s),
                 ("mixture", "show", mixture, "--samples", "100", "--seq-len", "16", *s),
                 ("schedule", "show", RECIPE, "--steps", "100")):
        done, heavy = heavy_imports(*args)
        assert done.returncode == 0, (args, done.stderr[-2000:])
        assert not heavy, f"renewlm {' '.join(map(str, args[:2]))} imports {sorted(heavy)}"
