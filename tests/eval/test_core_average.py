"""The core average: random-baseline rescaling, category means, their mean; the shipped YAML."""

import pytest

from renewlm.errors import ConfigError
from renewlm.eval.core import CoreSpec, core_average, default_spec, load_spec


def test_core_average_of_made_up_scores_is_the_formula():
    spec = default_spec()
    results = {
        "hellaswag": {"acc": 0.9, "acc_norm": 0.55},
        "winogrande": {"acc": 0.6},
        "arc_easy": {"acc_norm": 0.7},
        "boolq": {"acc": 0.5},
        "unscored": {"acc": 1.0},
    }
    got = core_average(results, spec)
    hella, wino = (0.55 - 0.25) / 0.75, (0.6 - 0.5) / 0.5
    arc, boolq = (0.7 - 0.25) / 0.75, (0.5 - 0.62) / 0.38  # below chance stays negative
    assert got["tasks"] == pytest.approx({"hellaswag": hella, "winogrande": wino, "arc_easy": arc, "boolq": boolq})
    assert got["categories"] == pytest.approx(
        {"language understanding": (hella + wino) / 2, "world knowledge": arc, "reading comprehension": boolq}
    )
    assert got["core_average"] == pytest.approx(((hella + wino) / 2 + arc + boolq) / 3)
    assert core_average({"unscored": {"acc": 1.0}}, spec) is None


def test_the_shipped_yaml_covers_the_well_known_tasks():
    tasks = default_spec().tasks
    assert set(tasks) == {"hellaswag", "arc_easy", "arc_challenge", "piqa", "winogrande", "lambada_openai", "boolq", "openbookqa", "mmlu"}
    assert tasks["piqa"].random_baseline == 0.5 and tasks["mmlu"].random_baseline == 0.25


def test_a_user_yaml_replaces_and_adds_tasks(tmp_path):
    path = tmp_path / "core.yaml"
    path.write_text("tasks:\n  hellaswag: {category: mine, metric: acc, random_baseline: 0.5}\n  tiny_qa: {category: mine, random_baseline: 0.5}\n")
    spec = load_spec(path)
    assert spec.tasks["hellaswag"].category == "mine" and spec.tasks["tiny_qa"].metric == "acc"
    assert spec.tasks["piqa"] == default_spec().tasks["piqa"]
    got = core_average({"hellaswag": {"acc": 1.0}, "tiny_qa": {"acc": 0.75}}, spec)
    assert got["core_average"] == pytest.approx((1.0 + 0.5) / 2)


def test_bad_specs_and_missing_metrics_are_one_sentence(tmp_path):
    path = tmp_path / "core.yaml"
    path.write_text("tasks:\n  x: {category: a, random_baseline: 1.0}\n")
    with pytest.raises(ConfigError, match=r"core.yaml: tasks.x.random_baseline"):
        load_spec(path)
    with pytest.raises(ConfigError, match=r"reads 'acc_norm' of task 'piqa', which reported acc"):
        core_average({"piqa": {"acc": 0.7}}, CoreSpec(tasks=default_spec().tasks))
