"""Every shipped recipe loads and builds, and says which paper it follows."""

from pathlib import Path

import pytest

from renewlm.optim.schedule import load_schedule

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


def test_recipes_exist():
    assert len(RECIPES) >= 7


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_loads_builds_and_cites(path):
    schedule = load_schedule(path).build(1000, 4096)
    assert 0 < schedule.peak_lr < 1e-2
    assert all(schedule.lr(t) >= 0 for t in range(0, 1001, 50))
    assert path.read_text().startswith("# ") and any(w in path.read_text() for w in ("et al.", "MiniCPM"))


def test_parmar_switch_is_at_seventy_one_percent():
    schedule = load_schedule(Path(__file__).parent.parent / "recipes" / "parmar-reuse.yaml").build(1000)
    assert schedule.events["switch"] == 712
