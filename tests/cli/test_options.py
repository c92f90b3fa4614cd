"""`renewlm/cli/options.py`: lists, token counts and numbers read one way in every command; old flag
spellings work with one note on stderr, and an old and a new spelling together are refused."""

from pathlib import Path

import pytest

from renewlm.cli.options import count, counts, names, numbers
from renewlm.errors import ConfigError

RECIPE = Path(__file__).parents[2] / "recipes" / "wsd-1-sqrt.yaml"


def test_lists_take_repeats_and_commas_alike():
    assert names(["a,b", " c ", "d,,"]) == ["a", "b", "c", "d"]
    assert names(None) == []
    assert numbers(["1e-4,3e-4", "1e-3"], "--lrs") == [1e-4, 3e-4, 1e-3]
    assert counts(["1B,2B", "4e9"], "--durations") == [1_000_000_000, 2_000_000_000, 4_000_000_000]


@pytest.mark.parametrize("text, value", [("2B", 2_000_000_000), ("2e9", 2_000_000_000), ("38,889", 38_889), ("64k", 64_000), ("1_000", 1_000)])
def test_token_counts_parse_the_same_everywhere(text, value):
    assert count(text, "--tokens") == value


@pytest.mark.parametrize("call, says", [
    (lambda: count("1.5", "--tokens"), "--tokens 1.5 is not a whole number of tokens"),
    (lambda: count("lots", "--eval-tokens"), "--eval-tokens 'lots' is not a token count"),
    (lambda: numbers(["0.5,x"], "--weights"), "'x' is not a number"),
    (lambda: numbers(["nan"], "--lrs"), "'nan' is not a number"),
])
def test_bad_lists_and_counts_are_refused(call, says):
    with pytest.raises(ConfigError, match=says):
        call()


def test_sweep_takes_a_count_with_a_suffix(cli, tmp_path):
    # --collect refuses every setting by name, after the flags are parsed: 2B was read as a count
    code, _, err = cli("sweep", "s", "--tokens", "2B", "--durations", "2B,4B", "--collect", "--store", tmp_path / "s")
    assert code == 2 and "leave out --tokens, --durations" in err and "token count" not in err


def test_an_old_spelling_works_with_one_note(cli, tmp_path):
    chart = tmp_path / "plan.png"
    code, out, err = cli("plan", "--releases", "2", "--tokens-per-release", "1B", "--plot", chart, "--store", tmp_path / "s")
    assert code == 0 and chart.exists() and f"wrote {chart}" in out.replace("\n", "")
    assert err == "note: --plot is renamed --out; the old spelling goes in the next release\n"
    picture = tmp_path / "lr.png"
    code, _, err = cli("schedule", "plot", RECIPE, "--steps", "100", "--output", picture)
    assert code == 0 and picture.exists() and err.count("\n") == 1 and "--output is renamed --out" in err


@pytest.mark.parametrize("args, says", [
    (["plan", "--releases", "2", "--tokens-per-release", "1B", "--plot", "a.png", "--out", "b.png"],
     "--plot is the old spelling of --out; give --out only"),
    (["schedule", "plot", RECIPE, "--steps", "100", "--output", "a.png", "-o", "b.png"],
     "--output is the old spelling of --out; give --out only"),
    (["schedule", "plot", RECIPE, "--steps", "100"], "add --out FILE.png"),
])
def test_both_spellings_or_no_output_are_refused(cli, tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(*args, *(["--store", tmp_path / "s"] if args[0] == "plan" else []))
    assert code == 2 and err.startswith("error: ") and err.endswith(f"{says}\n") and err.count("\n") == 1 and out == ""
    assert list(tmp_path.iterdir()) == []
