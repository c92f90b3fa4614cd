"""`renewlm schedule show|plot` through the CLI entry point."""

import math
import re
import subprocess
import sys

import pytest


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_show_key_points_and_events(cli, tmp_path):
    code, out, err = cli("schedule", "show", write(tmp_path, "name: reuse\nstart_lr: 4.5e-5\n"), "--steps", "1000")
    assert code == 0, err
    rows = {int(step.replace(",", "")): (float(lr), stage, events) for step, lr, stage, events in re.findall(r"│\s*([\d,]+) │[^│]*│\s*(\S+) │ (\w+)\s*│ ([\w, ]*?)\s*│", out)}
    # closed form of the switch: x = acos(2·(0.2 − 0.01)/0.99 − 1)/π = 0.7113 -> step 712
    assert rows[712][2] == "switch" and rows[712][1] == "decay"
    assert rows[712][0] == pytest.approx(4.5e-7 + (4.5e-5 - 4.5e-7) / 2 * (1 + math.cos(math.pi * 0.712)), rel=1e-4)
    assert rows[0][0] == 4.5e-5 and rows[0][2] == "decay_start"
    assert rows[1000] == (pytest.approx(4.5e-7), "end", "decay_end")


def test_show_csv_is_every_step_at_full_precision(cli, tmp_path):
    code, out, _ = cli("schedule", "show", write(tmp_path, "name: cosine\npeak_lr: 1.0e-3\n"), "--steps", "100", "--csv")
    lines = out.splitlines()
    assert code == 0 and lines[0] == "step,lr" and len(lines) == 102
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(101))
    # warmup: round(0.01 · 100) = 1 step at the peak; then cosine over 99 steps from 1e-3 to 1e-4
    assert float(lines[1].split(",")[1]) == pytest.approx(1e-3, rel=1e-15)
    for t in (1, 50, 99, 100):
        lr = float(lines[t + 1].split(",")[1])
        assert lr == pytest.approx(1e-4 + (1e-3 - 1e-4) / 2 * (1 + math.cos(math.pi * (t - 1) / 99)), rel=1e-12)


def test_show_csv_converts_tokens(cli, tmp_path):
    spec = write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\nwarmup_tokens: 400\ndecay_tokens: 1000\n")
    code, out, err = cli("schedule", "show", spec, "--steps", "50", "--tokens-per-step", "100", "--csv")
    lrs = [float(line.split(",")[1]) for line in out.splitlines()[1:]]
    assert code == 0, err
    # 4 warmup steps at (t+1)/4 of the peak, stable to step 40, 1-sqrt over the last 10
    assert lrs[:5] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    assert lrs[39] == 1e-3 and lrs[44] == pytest.approx(1e-3 * (1 - math.sqrt(0.4)))


def test_plot_draws_every_schedule_and_marks_its_boundaries(cli, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    drawn, marks = [], []
    plot, axvline = Axes.plot, Axes.axvline
    monkeypatch.setattr(Axes, "plot", lambda self, xs, ys, **kw: drawn.append((kw["label"], list(xs), list(ys))) or plot(self, xs, ys, **kw))
    monkeypatch.setattr(Axes, "axvline", lambda self, x, **kw: marks.append((x, kw["linestyle"])) or axvline(self, x, **kw))
    a = write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\n", "a.yaml")
    b = write(tmp_path, "name: reuse\nstart_lr: 1.0e-3\n", "b.yaml")
    code, _, err = cli("schedule", "plot", a, b, "--steps", "200", "-o", tmp_path / "out.png")
    assert code == 0, err
    assert (tmp_path / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [label for label, _, _ in drawn] == ["a (wsd)", "b (reuse)"]
    label, xs, ys = drawn[0]
    assert xs == list(range(201)) and ys[100] == 1e-3 and ys[200] == 0.0
    # wsd: warmup ends at 2, decay starts at 160 (dotted); reuse: its switch at ceil(0.7113·200) = 143 (dashed)
    assert (2, ":") in marks and (160, ":") in marks and (143, "--") in marks


def test_plot_samples_long_runs_but_keeps_the_boundaries(cli, tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    drawn = []
    plot = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, xs, ys, **kw: drawn.append(list(xs)) or plot(self, xs, ys, **kw))
    code, _, err = cli("schedule", "plot", write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\n"), "--steps", "1000003", "-o", tmp_path / "o.png")
    assert code == 0, err
    xs = drawn[0]
    # warmup round(10,000.03) = 10,000 steps; decay round(200,000.6) = 200,001 steps from 800,002
    assert len(xs) < 10_000 and {0, 9_999, 10_000, 800_001, 800_002, 1_000_002, 1_000_003} <= set(xs)


BAD = {
    "name: cosine\npeak_lr: 1.0e-3\nwarmup_fraction: 2\n": "warmup_fraction: Input should be less than or equal to 1",
    "name: wsd\npeak_lr: 1.0e-3\nwarmup_fraction: 0.5\ndecay_fraction: 0.7\n": "add up past the whole run",
    "name: cosine\npeak_lr: 1.0e-4\nmin_lr: 1.0e-3\n": "min_lr 0.001 is above peak_lr 0.0001",
    "name: infinite\npeak_lr: 1.0e-4\nmin_lr: 0\nanneal_fraction: 0.1\n": "min_lr > 0",
    "name: linear\npeak_lr: 1.0e-3\n": "'linear' found using 'name' does not match any of the expected tags",
    "name: cosine\npeak_lr: 1.0e-3\nwarmup: 0.1\n": "cosine.warmup: unknown field",
    "name: cosine\npeak_lr: .inf\n": "finite number",
    "name: [unclosed\n": "not valid YAML",
}


@pytest.mark.parametrize("text", list(BAD), ids=range(len(BAD)))
def test_bad_schedules_exit_2_with_one_sentence(cli, tmp_path, text):
    spec = write(tmp_path, text)
    code, out, err = cli("schedule", "show", spec, "--steps", "100")
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith(f"error: {spec}") and BAD[text] in lines[0], err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "10", "--tokens-per-step", "100"], "add up past the run's 10 steps"),
        (["--steps", "100"], "warmup_tokens needs the run's tokens per step"),
        (["--steps", "0"], "at least 1 step"),
    ],
)
def test_bad_runs_exit_2_with_one_sentence(cli, tmp_path, args, message):
    spec = write(tmp_path, "name: wsd\npeak_lr: 1.0e-3\nwarmup_tokens: 1000\ndecay_tokens: 1000\n")
    code, _, err = cli("schedule", "show", spec, *args)
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_file_and_wrong_output_exit_2(cli, tmp_path):
    code, _, err = cli("schedule", "show", tmp_path / "missing.yaml", "--steps", "10")
    assert code == 2 and "missing.yaml does not exist" in err
    spec = write(tmp_path, "name: constant\nlr: 1.0e-4\n")
    code, _, err = cli("schedule", "plot", spec, "--steps", "10", "-o", tmp_path / "out.pdf")
    assert code == 2 and "should be a .png file" in err and not (tmp_path / "out.pdf").exists()


def test_installed_command_prints_csv(tmp_path):
    spec = write(tmp_path, "name: constant\nlr: 3.0e-5\n")
    done = subprocess.run([sys.executable, "-m", "renewlm", "schedule", "show", str(spec), "--steps", "3", "--csv"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "step,lr\n0,3e-05\n1,3e-05\n2,3e-05\n3,3e-05\n"


@pytest.mark.parametrize("log", [False, True])
def test_plot_legend_sits_outside_the_axes_and_log_scales_the_lr(cli, tmp_path, monkeypatch, log):
    from matplotlib.figure import Figure

    saved = []
    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **kw: saved.append(self) or savefig(self, *a, **kw))
    specs = [write(tmp_path, f"name: cosine\npeak_lr: {lr}\n", f"s{i}.yaml") for i, lr in enumerate(["1.0e-3", "3.0e-4", "1.0e-4"])]
    code, _, err = cli("schedule", "plot", *specs, "--steps", "100", "-o", tmp_path / "out.png", *(["--log"] if log else []))
    assert code == 0, err
    (fig,) = saved
    (ax,) = fig.axes
    assert ax.get_yscale() == ("log" if log else "linear")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # the figure was closed after saving: lay it out again
    fig.draw(renderer)
    legend, axes = fig.legends[0].get_window_extent(renderer), ax.get_window_extent(renderer)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["s0 (cosine)", "s1 (cosine)", "s2 (cosine)"]
    assert legend.y1 <= axes.y0  # below the axes: it covers no curve
    if log:  # the curves span 1e-5..1e-3: a log axis shows all three decades
        low, high = ax.get_ylim()
        assert low <= 1e-5 and high >= 1e-3
