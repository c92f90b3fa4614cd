import math

import pytest

from renewlm.optim.schedule import load_schedule


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_show_key_points_and_events(cli, tmp_path):
    code, out, err = cli("schedule", "show", write(tmp_path, "name: reuse\nstart_lr: 4.5e-5\n"), "--steps", "1000")
    assert code == 0, err
    assert "switch" in out and "712" in out and "4.5000e-05" in out


def test_show_csv_is_every_step(cli, tmp_path):
    code, out, _ = cli("schedule", "show", write(tmp_path, "name: cosine\npeak_lr: 1.0e-3\n"), "--steps", "100", "--csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0] == "step,lr" and len(lines) == 102
    step, lr = lines[51].split(",")
    assert int(step) == 50
    # warmup: round(0.01 · 100) = 1 step; then cosine over 99 steps from 1e-3 to 1e-4
    assert float(lr) == pytest.approx(1e-4 + (1e-3 - 1e-4) / 2 * (1 + math.cos(math.pi * 49 / 99)), rel=1e-9)


def test_plot_writes_a_png(cli, tmp_path):
    a = write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\n", "a.yaml")
    b = write(tmp_path, "name: branch\nstart_lr: 1.0e-3\n", "b.yaml")
    code, _, err = cli("schedule", "plot", a, b, "--steps", "200", "-o", tmp_path / "out.png")
    assert code == 0, err
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_schedules_exit_2_with_one_sentence(cli, tmp_path):
    cases = {
        "name: cosine\npeak_lr: 1.0e-3\nwarmup_fraction: 2\n": "warmup_fraction",
        "name: wsd\npeak_lr: 1.0e-3\nwarmup_fraction: 0.5\ndecay_fraction: 0.7\n": "add up past the whole run",
        "name: cosine\npeak_lr: 1.0e-4\nmin_lr: 1.0e-3\n": "above peak_lr",
        "name: linear\npeak_lr: 1.0e-3\n": "name",
        "name: cosine\npeak_lr: 1.0e-3\nwarmup: 0.1\n": "unknown field",
        "name: [unclosed\n": "not valid YAML",
    }
    for text, phrase in cases.items():
        code, _, err = cli("schedule", "show", write(tmp_path, text), "--steps", "100")
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], (text, err)
    code, _, err = cli("schedule", "show", tmp_path / "missing.yaml", "--steps", "10")
    assert code == 2 and "does not exist" in err
    tokens = write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\nwarmup_tokens: 1000\ndecay_tokens: 1000\n")
    code, _, err = cli("schedule", "show", tokens, "--steps", "10", "--tokens-per-step", "100")
    assert code == 2 and "add up past the run's 10 steps" in err


def test_loaded_spec_round_trips(tmp_path):
    spec = load_schedule(write(tmp_path, "name: infinite\npeak_lr: 3.0e-4\nmin_lr: 3.0e-5\n"))
    assert spec.constant == (3e-4 + 3e-5) / 2
