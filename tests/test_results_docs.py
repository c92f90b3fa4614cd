"""The docs' result tables are rendered from the studies' JSON (benchmarks/reproduce/render.py), and the
statistics they print (benchmarks/reproduce/stats.py) are the textbook ones."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce"))

import render  # noqa: E402
import stats  # noqa: E402


def test_every_marked_table_in_the_docs_is_what_the_json_gives():
    assert render.stale() == []
    marked = [m["name"] for path in render.DOCS.glob("*.md") for m in render.BLOCK.finditer(path.read_text())]
    assert "corpora" in marked and "regime-check" in marked  # the check reads real blocks, not none


def test_a_table_edited_by_hand_is_found_and_rendered_back():
    good = "intro\n<!-- render:corpora -->\n" + render.corpora() + "<!-- /render:corpora -->\nafter\n"
    assert render.render(good) == (good, [])
    edited = good.replace("| `cv-man` |", "| `cv-man ` |")
    text, changed = render.render(edited)
    assert changed == ["corpora"] and text == good
    with pytest.raises(SystemExit, match="knows only"):
        render.render("<!-- render:nothing -->\nx\n<!-- /render:nothing -->")


def test_summary_and_the_paired_interval():
    s = stats.summary([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["sd"] == 1.0 and stats.cell(s) == "2.000 ± 1.000"
    assert stats.summary([4.0])["sd"] is None and stats.cell(stats.summary([4.0])) == "4.000"
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t(0.975, 2) = 4.3027
    d = stats.difference([1.1, 1.2, 1.3], [1.0, 1.0, 1.0], paired=True)
    half = 4.302652729911275 * 0.1 / 3**0.5
    assert d["mean"] == pytest.approx(0.2) and d["low"] == pytest.approx(0.2 - half) and d["high"] == pytest.approx(0.2 + half)
    assert d["verdict"] == "tie" and d["relative"] == pytest.approx(0.2)
    assert stats.difference([2.0, 2.1, 2.2], [1.0, 1.01, 1.02], paired=True)["verdict"] == "higher"
    # where the seeds move both arms together, pairing sees the gap that Welch's interval cannot
    a, b = [1.10, 1.21, 1.32], [1.0, 1.1, 1.2]
    assert stats.difference(a, b, paired=True)["verdict"] == "higher"
    assert stats.difference(a, b, paired=False)["verdict"] == "tie"
    assert stats.difference([1.0], [2.0], paired=True)["verdict"] == "one seed: no interval"
    with pytest.raises(ValueError, match="as many values"):
        stats.difference([1.0, 2.0], [1.0], paired=True)


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    near = stats.difference([1.001, 1.002, 1.003], [1.0, 1.0, 1.0], paired=True)  # +0.002 [−0.0005, +0.0045]
    assert stats.within(near, 0.01) is True and stats.at_most(near, 0.01) is True
    noisy = stats.difference([1.0, 1.05, 0.96], [1.0, 1.0, 1.0], paired=True)  # a tie, but not shown equal
    assert noisy["verdict"] == "tie" and stats.within(noisy, 0.02) is False and stats.at_most(noisy, 0.02) is False
    one = stats.difference([1.0], [1.0], paired=True)
    assert stats.within(one, 0.02) is None and stats.at_most(one, 0.02) is None


def test_welch_interval():
    # a: mean 3, var 1 (n 3); b: mean 1, var 4 (n 3): se = sqrt(1/3 + 4/3), Welch df = (5/3)^2 / ((1/9 + 16/9) / 2)
    d = stats.difference([2.0, 3.0, 4.0], [-1.0, 1.0, 3.0], paired=False)
    se, df = (5 / 3) ** 0.5, (5 / 3) ** 2 / ((1 / 9 + 16 / 9) / 2)
    from scipy.stats import t

    assert d["high"] - d["mean"] == pytest.approx(t.ppf(0.975, df) * se) and d["verdict"] == "tie"
    assert stats.gap_cell(d).startswith("+2.000 [")


def test_the_schedule_study_renders_from_its_json(tmp_path, monkeypatch):
    import c2_schedules

    tasks = ["cv-prose", "cv-man", "cv-code"]
    rise = {"infinite": 1.0, "cosine": 1.5, "constant": 0.2}
    after = {arm: [{"task": t, "adaptation": stats.summary([2.0 + k + 0.01 * s for s in range(3)]),
                    "loss": {c: stats.summary([3.0 + r * k + 0.01 * s for s in range(3)]) for c in tasks},
                    "forgetting": {tasks[j]: stats.summary([r * (k - j) + 0.01 * s for s in range(3)]) for j in range(k)}}
                   for k, t in enumerate(tasks)] for arm, r in rise.items()}
    verdict = c2_schedules.verdicts({arm: rows for arm, rows in after.items()}, tasks, converged=True)
    (tmp_path / "c02_schedules.json").write_text(json.dumps({
        "tasks": tasks, "seeds": [0, 1, 2], "after_task": after, "verdict": verdict, "training_seconds": 7200.0,
        "task_one_check": {"gain": 0.0232, "converged": True}, "steps": {"task_one": 4200, "per_task": 600}}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c02_schedules()
    assert "| infinite | 3 (`cv-code`) |" in text and "forgetting of `cv-man`" in text
    assert "infinite forgets less of `cv-prose` than cosine re-warm: shown" in text
    assert "infinite adapts as well" in text and "7,200 s of training" in text and "converged" in text


def test_the_sweep_study_renders_from_its_json(tmp_path, monkeypatch):
    import c6_sweep

    durations = [d * 16384 for d in c6_sweep.DURATION_STEPS]
    shape = {"cv-man": (1.0, 3), "cv-man1": (0.5, 1), "cv-man1-shuffled": (0.25, 0)}  # best LR multiple, best duration index
    corpora = {}
    for c, (lr, best) in shape.items():
        losses = [3.0 - 0.1 * min(i, best) + 0.05 * max(0, i - best) for i in range(len(durations))]
        corpora[c] = {"best_lr": lr * 1e-3, "spread": 0.004, "best_tokens": durations[best], "in_mixture": c != "cv-man1-shuffled",
                      "reason": "it helps cv-man" if c != "cv-man1-shuffled" else "it hurts cv-man",
                      "durations": [{"tokens": t, "target": x} for t, x in zip(durations, losses)]}
    record = {"corpora": corpora, "suggested_mixture": {
        "phases": [{"corpora": {"cv-man": durations[3], "cv-man1": durations[1]}, "end": 1.0}],
        "replay": {"fraction": 0.25, "corpora": {"cv-prose": 1.0}}}}
    mixtures = c6_sweep.arms(record)
    target = {"ratio": [2.50, 2.51, 2.52], "equal": [2.60, 2.62, 2.61], "concatenation": [2.52, 2.50, 2.53]}
    verdict = c6_sweep.verdict(record, target)
    assert verdict["checks"] == {"best_tokens_differ": True, "ratio_beats_equal": True, "ratio_beats_concatenation": False}
    assert verdict["decided"] and verdict["reproduced"] is False
    (tmp_path / "c06_sweep.json").write_text(json.dumps({
        "target": "cv-man", "roles": c6_sweep.ROLE, "base": "cv-base", "regime": {"batch_tokens": 16384}, "seeds": [0, 1, 2],
        "training_seconds": 6000.0, "sweep": {**record, "settings": {"durations": durations, "replay": 0.25}},
        "mixtures": mixtures, "lr": 1e-3, "verdict": verdict,
        "arms": {a: {"target": stats.summary(v), "losses": {"cv-prose": stats.summary([3.2] * 3)}} for a, v in target.items()}}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c06_sweep()
    assert "| `cv-man` (large, helpful) | 0.001 | 3.0000 | 2.9000 | 2.8000 | 2.7000 | 2.7500 | 0.0040 | 3,276,800 | kept: it helps cv-man |" in text
    assert "| `equal` | `cv-man` 0.5, `cv-man1` 0.5 |" in text and "| `concatenation` | `cv-man1` 0.5, `cv-man` 0.5 |" in text
    assert "| `ratio` | `cv-man` 0.8, `cv-man1` 0.2 |" in text  # 200 and 50 steps' tokens
    assert "the ratio mixture beats their concatenation on the target: not shown" in text and "(not reproduced as a whole)" in text


def test_the_reuse_study_renders_from_its_json(tmp_path, monkeypatch):
    import c4_reuse

    corpora = ["cv-prose", "cv-man", "cv-de"]
    base = {"never": 3.30, "2": 3.25, "5": 3.20, "10": 3.21, "50": 3.28}
    score = {a: [x + 0.01 * s for s in range(3)] for a, x in base.items()}
    verdict = c4_reuse.verdict(score)
    assert verdict["best"] == "5" and verdict["checks"] == {"five_best_or_tied": True, "2_worse_than_five": True, "50_worse_than_five": True}
    results = {a: {"switch_step": None if a == "never" else 100 + int(a), "average": stats.summary(v),
                   "loss": {c: stats.summary(v) for c in corpora}} for a, v in score.items()}
    (tmp_path / "c04_reuse.json").write_text(json.dumps({
        "corpora": corpora, "added": "cv-de", "general_blend": {"cv-prose": 0.5, "cv-man": 0.5},
        "second_blend": {"cv-prose": 0.45, "cv-man": 0.45, "cv-de": 0.1}, "steps": 600, "base": "cv-base", "seeds": [0, 1, 2],
        "training_seconds": 9000.0, "results": results, "verdict": verdict}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c04_reuse()
    assert "| start/5 (step 105) | 3.2100 ± 0.0100 |" in text and "| no switch | 3.3100 ± 0.0100 |" in text
    assert "`cv-de` (added)" in text and "then from the switch the second (`cv-prose` 0.45, `cv-man` 0.45, `cv-de` 0.1)" in text
    assert "start/50 is worse than start/5: shown" in text and "(reproduced as a whole)" in text


def test_the_replay_study_renders_from_its_json(tmp_path, monkeypatch):
    import c1_replay

    def row(old, new, **extra):
        return {"old": stats.summary([old + 0.01 * s for s in range(3)]), "new": stats.summary([new + 0.002 * s for s in range(3)]),
                "avg": stats.summary([(old + new) / 2 + 0.006 * s for s in range(3)]), **extra}

    result = {"corpus": "cv-code", "recommended": 0.05, "union": row(3.10, 3.00),
              "updates": [row(3.60, 3.00, replay=0.0), row(3.11, 3.005, replay=0.05)]}
    result["verdict"] = c1_replay.verdict(result)
    assert result["verdict"]["checks"] == {"within_tolerance": True, "zero_gap_three_times": True, "new_data_rise_at_most_0.01": True}
    (tmp_path / "c01_replay.json").write_text(json.dumps({
        "shifts": {"weak": result}, "seeds": [0, 1, 2], "steps": {"update": 600}, "training_seconds": 50000.0}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c01_replay()
    assert "**Weak shift, `cv-code`**" in text and "| 5% (recommended) | 3.1200 ± 0.0100 |" in text and "| union retrain |" in text
    assert "as good as the union (its gap inside ±0.031): shown" in text and "(reproduced as a whole)" in text
    assert "50,000 s of training" in text


def test_the_soup_study_renders_from_its_json(tmp_path, monkeypatch):
    import c5_soups

    corpora = ["cv-prose", "cv-man", "cv-de"]

    def losses(alpha, seed):  # the old data and the target best at α = 0.3; the update's own data falls with α
        bowl = 3.0 + (alpha - 0.3) ** 2 + 0.01 * seed
        return {part: {"cv-prose": bowl, "cv-man": 4.0 - alpha, "cv-de": bowl + 0.5} for part in c5_soups.PARTS}

    by_seed = {s: {a: losses(a, s) for a in c5_soups.ALPHAS} for s in range(3)}
    picks = {s: c5_soups.chosen(rows) for s, rows in by_seed.items()}
    assert picks == {0: 0.3, 1: 0.3, 2: 0.3}
    verdict = c5_soups.verdict(by_seed, picks)
    table = [{"alpha": a, "test": {c: stats.summary([by_seed[s][a]["test"][c] for s in range(3)]) for c in corpora}} for a in c5_soups.ALPHAS]
    (tmp_path / "c05_soups.json").write_text(json.dumps({
        "old": "cv-prose", "update_corpus": "cv-man", "target": "cv-de", "table": table, "verdict": verdict, "steps": 600,
        "chosen": {str(s): a for s, a in picks.items()}, "seeds": [0, 1, 2], "training_seconds": 3600.0,
        "losses": {str(s): {str(a): rows[a] for a in c5_soups.ALPHAS} for s, rows in by_seed.items()}}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c05_soups()
    assert "below the update on every corpus" not in text  # its own data's loss falls all the way to α = 1
    assert "| 0.3 | 3.0100 ± 0.0100 | 3.7000 ± 0.0000 | 3.5100 ± 0.0100 |" in text and "| 1 (the update) |" in text
    assert "seed 0: 0.3, seed 1: 0.3, seed 2: 0.3" in text and "on `cv-de` -0.4900" in text
    assert "the chosen soup is below the update on `cv-de`: shown" in text and "(reproduced as a whole)" in text


def test_the_switch_study_renders_from_its_json(tmp_path, monkeypatch):
    import c3_switch

    corpora = ["cv-prose", "cv-code", "cv-man", "cv-de"]
    names = {p: [[c3_switch.RELEASE1] + [f"{p}{k}-s{s}" for k in range(2, 5)] for s in range(3)] for p in c3_switch.PARADIGMS}
    behind = {"retrain": 0.0, "switch": 0.002, "continue": 0.03}  # continue's gap grows by 0.03 a release, switch's stays small
    losses, flops = {c3_switch.RELEASE1: dict.fromkeys(corpora, 3.0)}, {c3_switch.RELEASE1: 100.0}
    for p, by_seed in names.items():
        for s, series in enumerate(by_seed):
            for k, v in enumerate(series[1:], start=1):
                losses[v] = dict.fromkeys(corpora, 3.0 + behind[p] * k + 0.01 * s + (0.001 * s * k if p == "continue" else 0))
                flops[v] = {"retrain": 100.0 * (k + 1) * (1 + 0.1 * k), "switch": 100.0 + 12 * k, "continue": 100.0 + 10 * k}[p]
    table = c3_switch.rows(names, losses, flops, corpora)
    assert table["retrain"][3]["series_flops"]["mean"] == 100.0 * 4 * 1.3
    verdict = c3_switch.verdict(table)
    assert verdict["checks"] == {"switch_as_good_as_retrain": True, "switch_cost_at_most_60pct": True, "continue_falls_further_behind": True}
    flat = {**{p: [dict(r) for r in rows] for p, rows in table.items()}}
    flat["switch"][3]["series_flops"] = stats.summary([0.7 * 520.0] * 3)  # switch dearer than 60% of the retrain series
    assert c3_switch.verdict(flat)["checks"]["switch_cost_at_most_60pct"] is False
    plan = {"series": {p: [1.0, 0.5, 0.4, 0.3] for p in c3_switch.PARADIGMS}, "equal": {"0.1": 0.44, "0.45": 0.58}}
    (tmp_path / "c03_switch.json").write_text(json.dumps({
        "table": table, "verdict": verdict, "corpora": corpora, "plan": plan, "seeds": [0, 1, 2], "training_seconds": 50000.0,
        "release_one_check": {"gain": 0.012, "converged": True}, "increment_steps": 270, "replay": 0.05, "decay_fraction": 0.1,
        "cosine_retrain": {"version": "c3-rtc4-s0", "mean_loss": 3.05, "series_flops": 600.0}}))
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    text = render.c03_switch()
    assert "| continue | 4 (`cv-de`) | 3.1030 ± 0.0130 | +0.0930 [+0.0855, +0.1005] (+3.1%) | 130 | 25% | 30% |" in text
    assert "| retrain | 1 (`cv-prose`) | 3.0000 ± 0.0000 |  | 100 | 100% | 100% |" in text
    assert "costs at most 60% of the retrain series (26% measured): shown" in text and "(reproduced as a whole)" in text
    assert "`c3-rtc4-s0`, one seed): 3.0500" in text and "4 releases of equal increments and no replay would cost 44% of retraining" in text
