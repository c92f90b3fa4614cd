"""Downstream tasks with lm-evaluation-harness (the `renewlm[eval]` extra), on the model in memory.

The model is handed to lm-eval as it is (`HFLM(pretrained=model, tokenizer=...)`): no export to a
folder, no second copy of the weights. Task folders in lm-eval's own YAML format are indexed first;
lm-eval's ~15,000 built-in tasks (about 13 s to index on a laptop core) are indexed only when a task
is not found locally, so a run of local tasks starts at once and needs no network.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn

from renewlm.errors import ConfigError, InputError
from renewlm.eval.cadence import Cadence
from renewlm.eval.evaluator import Evaluator

INSTALL = "pip install 'renewlm[eval]'"


def require_lm_eval() -> None:
    """Refuse, in one sentence, when lm-eval (or accelerate, which its HFLM imports) is missing."""
    try:
        import lm_eval  # noqa: F401
        from lm_eval.models.huggingface import HFLM  # noqa: F401
    except ImportError as e:
        raise InputError(
            f"--tasks needs lm-evaluation-harness, which is not installed ({e.name or e} is missing); "
            f"install the eval extra: {INSTALL}"
        ) from None


def task_manager(tasks: Sequence[str], include_paths: Sequence[str | Path] = ()):
    """An lm-eval TaskManager that knows every task in `tasks`, or a ConfigError listing close matches."""
    require_lm_eval()
    from lm_eval.tasks import TaskManager

    folders = [str(Path(p).expanduser().absolute()) for p in include_paths]
    for folder in folders:
        if not Path(folder).is_dir():
            raise InputError(f"--include-path {folder} is not a folder; give a folder of lm-eval task YAML files")
    with _quiet():
        manager = TaskManager(include_path=folders or None, include_defaults=False) if folders else None
        if manager is None or not set(tasks) <= set(manager.all_tasks):
            manager = TaskManager(include_path=folders or None, include_defaults=True)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        sentences = []
        for task in unknown:
            close = difflib.get_close_matches(task, manager.all_tasks, n=5, cutoff=0.6)
            sentences.append(f"{task!r}" + (f" (close: {', '.join(close)})" if close else ""))
        where = f" or in {', '.join(folders)}" if folders else ""
        raise ConfigError(
            f"unknown lm-eval task {'; '.join(sentences)}: not among lm-eval's tasks{where}; "
            f"check the name (`lm-eval ls tasks` lists them) or pass --include-path with its YAML folder"
        )
    return manager


def run_tasks(
    model: nn.Module,
    tokenizer,
    tasks: Sequence[str],
    *,
    manager,
    num_fewshot: int | None = None,
    limit: int | None = None,
    batch_size: int | str = "auto",
    autocast=contextlib.nullcontext,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """`{task: {metric: value}}` for each task asked (a group's aggregate stands for its subtasks).

    Metric names are lm-eval's, with its filter after a '/' when it is not `none`
    (`acc`, `acc_norm`, `exact_match/strict-match`), and `_stderr` where lm-eval computed one.
    """
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    was_training = model.training
    device = next(model.parameters()).device
    with _quiet(), _no_provenance(), _rng_kept(), autocast():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(device))
        out = simple_evaluate(
            model=lm, tasks=list(tasks), num_fewshot=num_fewshot, limit=limit, task_manager=manager,
            log_samples=False, bootstrap_iters=0, verbosity="ERROR",
            random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
    model.train(was_training)
    return select_results(out["results"], out.get("group_subtasks", {}), tasks)


def select_results(results: dict, group_subtasks: dict, asked: Sequence[str]) -> dict[str, dict[str, float]]:
    """The numbers of the tasks asked; subtasks of an asked group are left to its aggregate, and a
    tag (a name for several tasks with no aggregate) stands for each of its tasks."""
    inside: set[str] = set()

    def collect(group: str) -> None:
        for sub in group_subtasks.get(group, []):
            inside.add(sub)
            collect(sub)

    for name in asked:
        collect(name)
    picked = {}
    for task, row in results.items():
        if task in asked or task not in inside:
            picked[task] = metrics_of(row)
    return picked


def metrics_of(row: dict) -> dict[str, float]:
    out = {}
    for key, value in row.items():
        if "," not in key or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        metric, filt = key.split(",", 1)
        out[metric if filt == "none" else f"{metric}/{filt}"] = float(value)
    return out


@contextlib.contextmanager
def _rng_kept() -> Iterator[None]:
    """lm-eval seeds Python's, numpy's and torch's global generators; a run's own randomness (and its
    bitwise resume) must not depend on whether a task set ran, so their states are put back."""
    states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval logs every task's defaults at INFO/WARNING; renewlm prints the results itself."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _no_provenance() -> Iterator[None]:
    """lm-eval adds `git describe` of the working directory and torch's environment report to its results,
    which renewlm does not keep (only the numbers): outside a git checkout that git call printed
    `fatal: not a git repository` once per evaluated version, and the report runs several subprocesses."""
    import lm_eval.evaluator

    with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None), \
            mock.patch.object(lm_eval.evaluator, "add_env_info", lambda results: None):
        yield


class LmEval(Evaluator):
    """A set of lm-eval tasks: `{task/metric: value}` (flat, so each number is one metrics.jsonl field)."""

    def __init__(
        self,
        tokenizer,
        tasks: Sequence[str],
        *,
        include_paths: Sequence[str | Path] = (),
        num_fewshot: int | None = None,
        limit: int | None = None,
        batch_size: int | str = "auto",
        autocast=contextlib.nullcontext,
        cadence: Cadence,
        name: str = "lm_eval",
    ):
        self.name, self.cadence, self.tokenizer, self.tasks = name, cadence, tokenizer, list(tasks)
        self.manager = task_manager(self.tasks, include_paths)  # unknown tasks fail before the run starts
        self.options = {"num_fewshot": num_fewshot, "limit": limit, "batch_size": batch_size, "autocast": autocast}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        results = run_tasks(model, self.tokenizer, self.tasks, manager=self.manager, **self.options)
        return {f"{task}/{metric}": value for task, numbers in results.items() for metric, value in numbers.items()}
