"""YAML files validated by pydantic models, with errors a person can act on.

PyYAML follows YAML 1.1, where `3e-4` is a string; the loader here reads it as the float a person
meant. Validation errors become one sentence per problem, naming the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from renewlm.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

# Sane bounds on one run, refused rather than planned: a run past them is a typo (1e18 for 1e9), and its
# 1% warmup alone would hold the LR near zero for longer than any job lasts. Llama 3 pre-trained on 15T
# tokens (10^15 is 66 times that) in about a million optimizer steps (10^8 is 100 times that); the longest
# contexts models train at are about 10^6 tokens (2^20 is 1,048,576).
MAX_TOKENS = 10**15
MAX_STEPS = 10**8
MAX_SEQ_LEN = 2**20

# YAML reads `tokens: 2e9` as a float (and Python callers write 2e9): a whole float counts as the count it names.
Whole = Annotated[int, BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)]


class Config(BaseModel):
    """Base of every renewlm config: unknown fields are errors, values are not coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Loader(yaml.SafeLoader):
    pass


_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[0-9][0-9_]*[eE][-+]?[0-9]+|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN)$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}; fix the syntax") from None


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path")
    return parse_yaml(path.read_text(), str(path))


def validate(model: type[M] | Any, data: Any, where: str) -> M:
    """Validate `data` as `model` (a pydantic model or any type, such as a discriminated union),
    with a ConfigError listing every problem in `where`."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(data)
        return TypeAdapter(model).validate_python(data)
    except ValidationError as e:
        raise ConfigError(describe(e, where)) from None


def load(model: type[M] | Any, path: str | Path) -> M:
    return validate(model, read_yaml(path), str(path))


def describe(error: ValidationError, where: str, *, own_sentences: bool = False) -> str:
    """One sentence per problem: `where: field.path: what is wrong (got VALUE)`. With `own_sentences`, a
    model's own checks (sentences that name their flag, as `renewlm update`'s do) are given as they are,
    one line each (a check that finds several problems says each on its own line)."""
    lines = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against the documentation"
        elif item["type"] == "missing":
            msg = "required field is missing"
        elif item["type"] == "value_error":  # a model's own check: its sentence says it all
            msg = msg.removeprefix("Value error, ")
            if own_sentences:
                lines += msg.splitlines()
                continue
        elif "input" in item and item["type"] not in ("model_type", "dict_type"):
            msg = f"{msg} (got {item['input']!r})"
        lines.append(f"{where}: {loc}: {msg}")
    return "; ".join(lines) if len(lines) == 1 else "\n".join(lines)
