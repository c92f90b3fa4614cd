"""`renewlm plan` through the CLI entry point: the table, JSON, the chart, measured speed, bad input."""

import json

import pytest
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.data.tokenizer import load_tokenizer
from renewlm.versions import write_version


def rows(out: str) -> list[list[str]]:
    """The table's body rows as lists of cell texts; a paradigm's name only on its first row."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in out.splitlines() if line.startswith("│")]


def totals(out: str) -> dict[str, str]:
    """Each paradigm's total row's last cell (its cost over retraining's)."""
    found, paradigm = {}, None
    for cells in rows(out):
        paradigm = cells[0] or paradigm
        if cells[1] == "total":
            found[paradigm] = cells[-1]
    return found


def test_four_releases_table_says_58_percent(cli, tmp_path):
    code, out, err = cli("plan", "--releases", "4", "--tokens-per-release", "10B", "--decay-fraction", "0.45", "--store", tmp_path / "s")
    assert code == 0, err
    # (1 + 0.45)·4 / (4·5/2) = 0.58; continuing: 4/10
    # averaged releases: the trunk's 4·T alone, 4/10
    assert totals(out) == {"retrain": "100%", "continue": "40%", "switch": "58%", "average": "40%"}
    body = rows(out)
    # retraining grows by T every release (quadratic in total), the others stay flat
    assert [r[2] for r in body[:5]] == ["10B", "20B", "30B", "40B", "100B"]
    assert [r[2] for r in body[10:15]] == ["14.5B", "14.5B", "14.5B", "14.5B", "58B"]
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == ["paradigm", "release", "tokens", "FLOPs", "FLOPs so far", "vs retrain"]
    assert "hours left out: no --tokens-per-second" in out
    assert not (tmp_path / "s").exists()


def test_hours_from_a_given_speed(cli, tmp_path):
    code, out, err = cli("plan", "--releases", "2", "--tokens-per-release", "36M", "--tokens-per-second", "10000", "--store", tmp_path)
    assert code == 0, err
    assert "speed: 10,000 tokens/s (given)" in out
    # continue: 36e6 / 1e4 = 3,600 s = 1 h per release; retrain: 1 h then 2 h
    body = rows(out)
    assert [r[4] for r in body[:3]] == ["1", "2", "3"]
    assert [r[4] for r in body[3:6]] == ["1", "1", "2"]


def test_json_is_the_whole_plan(cli, tmp_path):
    code, out, err = cli("plan", "--releases", "3", "--tokens-per-release", "100", "--replay", "0.2", "--json", "--store", tmp_path)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["paradigms"]["continue"]["tokens"] == pytest.approx([100, 125, 125])
    assert plan["paradigms"]["switch"]["cumulative_ratio"][-1] == pytest.approx(385 / 600)
    assert plan["flops_per_token"] == 8_220_192_768 and plan["tokens_per_second"] is None
    assert plan["paradigms"]["retrain"]["hours"] is None


def test_a_pretraining_of_its_own_size(cli, tmp_path):
    code, out, err = cli("plan", "--releases", "4", "--pretrain-tokens", "4B", "--tokens-per-release", "1B", "--store", tmp_path / "s")
    assert code == 0, err
    # retraining: 4, 5, 6, 7 (22B); continuing: 4 + 3 × 1 = 7B, 7/22 = 32%; switch: 4 + 3 × 1.1 = 7.3B, 33%
    assert totals(out) == {"retrain": "100%", "continue": "32%", "switch": "33%", "average": "32%"}
    assert [r[2] for r in rows(out)[10:15]] == ["4B", "1.1B", "1.1B", "1.1B", "7.3B"]
    assert "4 releases: a pre-training of 4B tokens, then 1B new tokens each" in out
    assert "P + (i−1)·T at release i" in out.replace("\n", " ")


def test_plot_is_a_png_with_the_ratios_annotated(cli, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    notes, lines = [], []
    annotate, plot = Axes.annotate, Axes.plot
    monkeypatch.setattr(Axes, "annotate", lambda self, text, xy, **kw: notes.append(text) or annotate(self, text, xy, **kw))
    monkeypatch.setattr(Axes, "plot", lambda self, xs, ys, **kw: lines.append((kw["label"], list(ys))) or plot(self, xs, ys, **kw))
    out_png = tmp_path / "charts" / "plan.png"
    code, out, err = cli("plan", "--releases", "4", "--tokens-per-release", "1e9", "--decay-fraction", "0.45", "--out", out_png, "--store", tmp_path / "s")
    assert code == 0, err
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out_png}" in out.replace("\n", "")
    assert [label for label, _ in lines] == ["retrain", "continue", "switch", "average"]
    # cumulative FLOPs: retraining 1, 3, 6, 10 × T × FLOPs per token
    assert lines[0][1] == pytest.approx([k * 1e9 * 8_220_192_768 for k in (1, 3, 6, 10)])
    assert notes == ["100%", "67%", "50%", "40%", "145%", "97%", "72%", "58%"]
    assert [p.name for p in out_png.parent.iterdir()] == ["plan.png"]


def test_a_version_with_measured_speed(cli, store):
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    write_version(store, "v1", LlamaForCausalLM(config), load_tokenizer(store, "tok"), {"seq_len": 32})
    folder = store.path("runs", "v1")
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(yaml.safe_dump({"name": "v1", "preset": "tiny"}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "tokens_per_second": s}) + "\n" for i, s in enumerate([1000, 3000, 2000])))
    code, out, err = cli("plan", "--releases", "2", "--tokens-per-release", "7.2M", "--model", "v1", "--store", store.root)
    assert code == 0, err
    # FLOPs per token from v1's config at its seq 32: 1,234,560 (worked out in tests/updates/test_plan.py)
    assert "model: version v1, sequence 32: 1.23e6 FLOPs per token" in out
    assert "speed: 2,000 tokens/s (measured: median of 3 steps in run v1)" in out
    # 7.2e6 / 2,000 = 3,600 s: 1 h per continued release
    assert [r[4] for r in rows(out)[3:6]] == ["1", "1", "2"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--releases", "0", "--tokens-per-release", "1B"], "--releases 0 plans no release"),
        (["--releases", "2", "--tokens-per-release", "0"], "--tokens-per-release 0 must be positive"),
        (["--releases", "2", "--tokens-per-release", "lots"], "is not a token count"),
        (["--releases", "2", "--tokens-per-release", "1B", "--decay-fraction", "0"], "--decay-fraction 0 is outside (0, 1]"),
        (["--releases", "2", "--tokens-per-release", "1B", "--decay-fraction", "1.2"], "--decay-fraction 1.2 is outside (0, 1]"),
        (["--releases", "2", "--tokens-per-release", "1B", "--replay", "1"], "--replay 1 is outside [0, 1)"),
        (["--releases", "2", "--tokens-per-release", "1B", "--model", "7b"], "neither a preset"),
        (["--releases", "2", "--tokens-per-release", "1B", "--tokens-per-second", "-3"], "--tokens-per-second -3 must be positive"),
        (["--releases", "2", "--tokens-per-release", "1B", "--out", "chart.jpg"], "should be a .png file"),
        (["--releases", "1000000000", "--tokens-per-release", "1B"], "--releases 1,000,000,000 is more than the 1,000 a plan lists"),
        (["--releases", "2", "--tokens-per-release", "1B", "--out", "no/such/chart.png"], "nor the folder above it exists"),
        (["--releases", "2", "--tokens-per-release", "1B", "--pretrain-tokens", "lots"], "--pretrain-tokens 'lots' is not a token count"),
        (["--releases", "2", "--tokens-per-release", "1e18"], "above the bound of 1e15 tokens"),
        (["--tokens-per-release", "1B"], "plan needs --releases N and --tokens-per-release T (or --from V --data C --predict"),
        (["--releases", "2", "--tokens-per-release", "1B", "--data", "code"], "--data describe an update to predict: add --from V --predict"),
        (["--releases", "2", "--tokens-per-release", "1B", "--replay", "0", "--replay", "0.1"], "--replay takes one share when pricing"),
        (["--from", "v1", "--data", "code"], "a prediction needs --from V, --data C and --predict"),
        (["--from", "v1", "--data", "code", "--predict", "--releases", "3"], "--releases, --out price releases, not a prediction"),
        (["--from", "v1", "--data", "code", "--predict", "--decay-fraction", "0.2"], "--decay-fraction, --out price releases"),
        (["--releases", "2", "--tokens-per-release", "1B", "--seed", "3"], "--seed describe an update to predict"),
        (["--releases", "2", "--tokens-per-release", "1B", "--model", "tiny", "--seq-len", "100000000000"], "above the bound of 1,048,576"),
    ],
)
def test_bad_input_one_sentence_exit_2_nothing_written(cli, tmp_path, args, words):
    chart = [] if "--out" in args else ["--out", tmp_path / "p.png"]
    code, out, err = cli("plan", *args, *chart, "--store", tmp_path / "s")
    assert code == 2
    assert err.startswith("error: ") and words in err and err.count("\n") == 1
    assert out == ""
    assert list(tmp_path.iterdir()) == []
