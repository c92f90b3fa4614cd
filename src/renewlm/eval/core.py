"""The core average: one number for downstream ability that moves when a model forgets.

As in the Databricks Model Gauntlet (https://www.databricks.com/blog/calibrating-mosaic-evaluation-gauntlet):
each task's accuracy is rescaled by its random baseline, (acc − rand) / (1 − rand), so 0 is guessing
and 1 is perfect whatever the number of choices; the rescaled scores are averaged within each
category, then the category means are averaged, so a category with many tasks does not outweigh one
with few. Scores below chance stay negative (not clipped), as in the Gauntlet: a model that has
forgotten a task should pull the average down, not hide at 0.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import Field

from renewlm.config import Config, load, parse_yaml, validate
from renewlm.errors import ConfigError


class CoreTask(Config):
    """One task of the core average."""

    category: str = Field(min_length=1, description="The category it is averaged in first.")
    metric: str = Field("acc", min_length=1, description="The lm-eval metric that is its accuracy (acc, acc_norm, ...).")
    random_baseline: float = Field(ge=0, lt=1, description="The accuracy of guessing at random (1 / number of choices).")


class CoreSpec(Config):
    """The core average's tasks, by lm-eval task name."""

    tasks: dict[str, CoreTask] = Field(description="Task name → its category, metric and random baseline.")


def default_spec() -> CoreSpec:
    text = resources.files("renewlm.eval").joinpath("core_average.yaml").read_text()
    return validate(CoreSpec, parse_yaml(text, "core_average.yaml"), "core_average.yaml")


def load_spec(path: str | Path | None = None) -> CoreSpec:
    """The shipped spec, with the tasks of the YAML at `path` (if any) replacing or adding entries."""
    spec = default_spec()
    if path is None:
        return spec
    user = load(CoreSpec, path)
    return CoreSpec(tasks={**spec.tasks, **user.tasks})


def rescaled(accuracy: float, random_baseline: float) -> float:
    return (accuracy - random_baseline) / (1 - random_baseline)


def core_average(results: dict[str, dict[str, float]], spec: CoreSpec) -> dict | None:
    """`{"core_average", "categories": {category: mean}, "tasks": {task: rescaled}}` over the tasks of
    `results` that `spec` knows, or None when it knows none of them."""
    scores: dict[str, float] = {}
    by_category: dict[str, list[float]] = {}
    for task, numbers in results.items():
        entry = spec.tasks.get(task)
        if entry is None:
            continue
        if entry.metric not in numbers:
            have = ", ".join(sorted(numbers)) or "none"
            raise ConfigError(
                f"the core average reads {entry.metric!r} of task {task!r}, which reported {have}; "
                f"set its metric in a --core YAML"
            )
        scores[task] = rescaled(numbers[entry.metric], entry.random_baseline)
        by_category.setdefault(entry.category, []).append(scores[task])
    if not scores:
        return None
    categories = {c: sum(v) / len(v) for c, v in by_category.items()}
    return {"core_average": sum(categories.values()) / len(categories), "categories": categories, "tasks": scores}
