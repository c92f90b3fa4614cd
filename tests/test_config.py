import pytest

from renewlm.config import parse_yaml
from renewlm.errors import ConfigError
from renewlm.optim.schedule import validate_schedule


def test_yaml_reads_exponent_floats_that_yaml_1_1_leaves_as_strings():
    assert parse_yaml("a: 3e-4\nb: 1.5E+3\nc: 7\nd: .5\ne: 1_000\n", "x") == {"a": 3e-4, "b": 1500.0, "c": 7, "d": 0.5, "e": 1000}


def test_errors_name_the_file_and_field_without_noise():
    with pytest.raises(ConfigError) as info:
        validate_schedule({"name": "cosine", "peak_lr": 1e-4, "min_lr": 1e-3}, "run.yaml")
    text = str(info.value)
    assert text.startswith("run.yaml: cosine: ") and "Value error" not in text and "{" not in text
    with pytest.raises(ConfigError, match=r"run.yaml: cosine.peak_lr: .*\(got 'fast'\)"):
        validate_schedule({"name": "cosine", "peak_lr": "fast"}, "run.yaml")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML at line 2, column 5: mapping values"):
        parse_yaml("a: 1\nb: c: d\n", "bad.yaml")
