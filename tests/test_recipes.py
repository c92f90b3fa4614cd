"""Every shipped recipe loads, builds, says which paper it follows, and has that paper's numbers."""

import math
from pathlib import Path

import pytest

from renewlm.optim.schedule import load_schedule

RECIPES_DIR = Path(__file__).parent.parent / "recipes"
RECIPES = sorted(RECIPES_DIR.glob("*.yaml"))


def recipe(stem):
    return load_schedule(RECIPES_DIR / f"{stem}.yaml")


def test_the_paper_recipes_are_all_there():
    assert {p.stem for p in RECIPES} >= {
        "ibrahim-rewarm-cosine", "ibrahim-infinite", "ibrahim-infinite-release", "parmar-reuse",
        "wsd-1-sqrt", "path-switching-branch", "no-rewarm-constant",
    }


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_builds_and_cites(path):
    spec = load_schedule(path)
    for total in (1, 100, 12_345):
        schedule = spec.build(total, 4096)
        lrs = [schedule.lr(t) for t in range(0, total + 1, max(1, total // 500))]
        assert 0 < schedule.peak_lr < 1e-2 and all(0 <= lr <= schedule.peak_lr for lr in lrs)
    header = path.read_text().split("\nname:")[0]
    assert header.startswith("# ") and any(w in header for w in ("et al.", "MiniCPM"))


def test_ibrahim_rewarm_cosine():
    s = recipe("ibrahim-rewarm-cosine").build(1000)  # η_max 3e-4 (405M), η_min = 0.1·η_max, warmup 1%
    assert s.lr(9) == pytest.approx(3e-4)
    assert s.lr(505) == pytest.approx(3e-5 + (3e-4 - 3e-5) / 2 * (1 + math.cos(math.pi * 495 / 990)))
    assert s.lr(1000) == pytest.approx(3e-5)


def test_ibrahim_infinite_main_path_and_release():
    main, release = recipe("ibrahim-infinite").build(1000), recipe("ibrahim-infinite-release").build(1000)
    # η_const = (3e-4 + 3e-5)/2 = 1.65e-4 from 60% of the task; the main path never anneals
    assert main.events["cooldown_end"] == release.events["cooldown_end"] == 600
    assert main.lr(600) == main.lr(1000) == pytest.approx(1.65e-4)
    # the release anneals exponentially over the last 15% to η_min
    assert release.events["anneal_start"] == 850
    assert release.lr(925) == pytest.approx(1.65e-4 * (3e-5 / 1.65e-4) ** 0.5)
    assert release.lr(1000) == pytest.approx(3e-5)


def test_parmar_switch_is_at_seventy_one_percent():
    s = recipe("parmar-reuse").build(1000)
    assert s.lr(0) == 4.5e-5 and s.lr(1000) == pytest.approx(4.5e-7)
    assert s.events["switch"] == 712  # ceil(0.7113 · 1000)


def test_wsd_branch_and_constant():
    wsd = recipe("wsd-1-sqrt").build(1000)
    assert wsd.lr(799) == 1e-3 and wsd.lr(900) == pytest.approx(1e-3 * (1 - math.sqrt(0.5))) and wsd.lr(1000) == 0
    branch = recipe("path-switching-branch").build(1000)
    assert branch.lr(0) == branch.lr(899) == 1e-3 and branch.events["decay_start"] == 900 and branch.lr(1000) == 0
    constant = recipe("no-rewarm-constant").build(1000)
    assert constant.lr(0) == constant.lr(1000) == 3e-5
