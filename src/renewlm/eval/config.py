"""The evaluators of a run, as YAML, and `build_evaluators` that makes them from what the run has.

    evaluations:
      - {kind: heldout, cadence: {every: 50}}
      - {kind: lm_eval, tasks: [hellaswag, arc_easy], limit: 100, cadence: {log: 8}}

Each entry's `name` keys its results in metrics.jsonl (default: `eval` for held-out loss, the key
metrics.jsonl has always used; `lm_eval` for a task set); names must differ.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from renewlm.config import Config
from renewlm.distributed import Dist
from renewlm.errors import ConfigError
from renewlm.eval.cadence import Cadence, Every
from renewlm.eval.evaluator import Evaluator, HeldOut

CadenceField = Field(default_factory=lambda: Every(every=0), description="When it runs: {every: N} or {log: N}; always at the first and last step.")


class HeldOutSpec(Config):
    """Held-out loss on every corpus of the run's mixture and its lineage."""

    kind: Literal["heldout"]
    name: str = Field("eval", min_length=1, description="Key of its results in metrics.jsonl.")
    cadence: Cadence = CadenceField


class LmEvalSpec(Config):
    """A set of lm-evaluation-harness tasks (the renewlm[eval] extra), on the model in memory."""

    kind: Literal["lm_eval"]
    name: str = Field("lm_eval", min_length=1, description="Key of its results in metrics.jsonl.")
    tasks: list[str] = Field(min_length=1, description="lm-eval task or group names.")
    include_paths: list[str] = Field(default_factory=list, description="Folders of task YAML files (lm-eval's format).")
    num_fewshot: int | None = Field(None, ge=0, description="Few-shot examples per prompt (default: each task's own).")
    limit: int | None = Field(None, gt=0, description="Examples per task (default: all).")
    batch_size: int | Literal["auto"] = Field("auto", description="Requests per forward pass, or auto.")
    cadence: Cadence = CadenceField


def _distinct_names(specs: list) -> list:
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"evaluator name {twice[0]!r} is used twice; give each evaluation its own name")
    return specs


EvaluationSpec = Annotated[HeldOutSpec | LmEvalSpec, Field(discriminator="kind")]
Evaluations = Annotated[list[EvaluationSpec], AfterValidator(_distinct_names)]


def default_evaluations(eval_every: int) -> list[HeldOutSpec]:
    """What a run without an `evaluations` list evaluates: held-out loss every `eval_every` steps."""
    return [HeldOutSpec(kind="heldout", cadence=Every(every=eval_every))]


def build_evaluators(
    specs: list,
    *,
    corpora: dict,
    tokenizer,
    seq_len: int,
    eval_tokens: int,
    micro_batch: int,
    dist_: Dist,
    autocast=contextlib.nullcontext,
    document_mask: bool = False,
) -> list[Evaluator]:
    """The evaluator objects of a run. lm-eval tasks are looked up here, so an unknown task or a
    missing extra stops the run before its first step. Held-out loss masks attention per document
    as the run trains (`document_mask`); lm-eval's prompts are single documents already."""
    out: list[Evaluator] = []
    for spec in specs:
        if isinstance(spec, HeldOutSpec):
            out.append(HeldOut(
                corpora, seq_len=seq_len, max_tokens=eval_tokens, micro_batch=micro_batch, dist_=dist_,
                autocast=autocast, cadence=spec.cadence, name=spec.name, document_mask=document_mask,
            ))
            continue
        if dist_.world > 1:
            # lm-eval drives its own batches on one process; under FSDP every process must join each forward.
            raise ConfigError(
                f"evaluation {spec.name!r} runs lm-eval tasks, which need a single-process run; remove it and "
                f"run `renewlm eval VERSION --tasks {' '.join(spec.tasks)}` on the finished version"
            )
        from renewlm.eval.harness import LmEval

        out.append(LmEval(
            tokenizer, spec.tasks, include_paths=spec.include_paths, num_fewshot=spec.num_fewshot, limit=spec.limit,
            batch_size=spec.batch_size, autocast=autocast, cadence=spec.cadence, name=spec.name,
        ))
    return out
