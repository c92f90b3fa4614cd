"""The report's run figure: both panels on one token axis, and a short run's points visible."""

from renewlm.report import figures
from renewlm.report.collect import RunCurves


def test_a_one_step_run_draws_its_point_on_the_token_axis_of_its_evaluations(monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "encode", lambda fig: drawn.append(fig) or "data:image/png;base64,")
    # A one-step release's metrics.jsonl: evaluations at tokens 0 and 256, one training step at 256.
    run = RunCurves("one", True, steps=[{"tokens": 256, "loss": 6.22, "lr": 3e-3}],
                    evals=[{"tokens": 0, "eval": {"a": 6.24}}, {"tokens": 256, "eval": {"a": 6.13}}], total_steps=1)
    figures.run_figure(run)
    (fig,) = drawn
    try:
        left, right, lr_axis = fig.axes
        assert left.get_xlim() == right.get_xlim() == lr_axis.get_xlim()
        assert left.get_xlim()[0] == 0 and left.get_xlim()[1] >= 256
        assert [line.get_marker() for line in (*left.get_lines(), *lr_axis.get_lines())] == ["o", "o"]  # one point shows
    finally:
        import matplotlib.pyplot as plt  # figures chose the Agg backend

        plt.close(fig)
