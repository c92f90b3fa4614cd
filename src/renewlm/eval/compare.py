"""Evaluate stored versions: held-out loss on every corpus, lm-eval tasks, the summary, the record.

`check` reads only records and manifests and reports every problem at once, before any model is
loaded; `evaluate_versions` computes everything in memory; `record` then writes each version's
`evaluations.json` through a rename. Nothing is written until every number is in, so a failed or
interrupted evaluation leaves every record as it was.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from renewlm.counts import DEFAULT_EVAL_MICRO_BATCH, DEFAULT_EVAL_TOKENS
from renewlm.data.corpus import Corpus, open_corpora
from renewlm.data.tokenizer_extend import base_fingerprints
from renewlm.distributed import Dist
from renewlm.errors import ConfigError, RenewError
from renewlm.eval.bytes import per_byte
from renewlm.eval.core import CoreSpec, core_average, load_spec
from renewlm.eval.evaluator import HeldOut
from renewlm.eval.heldout import heldout_windows, perplexity
from renewlm.eval.matrix import Lineage, lineage_of, summarize
from renewlm.model.presets import DEFAULT_SEQ_LEN
from renewlm.store import Store, write_json
from renewlm.versions import (
    EVALUATIONS,
    VersionRecord,
    lineage,
    lineage_corpora,
    list_versions,
    load_version,
    read_evaluations,
    read_version,
)
from renewlm.versions.lineage import display_parent


@dataclass
class Plan:
    """What `check` resolved: the versions, corpora and settings an evaluation will use."""

    versions: list[str]
    corpora: dict[str, Corpus]
    seq_len: int
    eval_tokens: int
    micro_batch: int
    tasks: list[str] = field(default_factory=list)
    manager: object = None
    core: CoreSpec | None = None
    num_fewshot: int | None = None
    limit: int | None = None
    batch_size: int | str = "auto"
    notes: list[str] = field(default_factory=list)


def _number_problems(*, limit, num_fewshot, seq_len, eval_tokens, micro_batch, batch_size) -> list[str]:
    """The numeric options out of range, one sentence each."""
    problems = []
    for flag, value, least in (("--limit", limit, 1), ("--num-fewshot", num_fewshot, 0), ("--seq-len", seq_len, 1)):
        if value is not None and value < least:
            problems.append(f"{flag} {value} must be at least {least}" + ("; leave it out to run every example" if flag == "--limit" else ""))
    for flag, value in (("--eval-tokens", eval_tokens), ("--micro-batch", micro_batch)):
        if value < 1:
            problems.append(f"{flag} {value} must be at least 1")
    if isinstance(batch_size, str) and batch_size != "auto" and not (batch_size.isdigit() and int(batch_size) > 0):
        problems.append(f"--batch-size {batch_size!r} must be a positive number or 'auto'")
    return problems


def _lineages_corpora(store: Store, metas: dict, notes: list[str]) -> list[str]:
    """Every corpus the versions' lineages trained on that the store still has (a note names the rest)."""
    wanted = list(dict.fromkeys(c for v in metas for c in lineage_corpora(store, v)))
    missing = [c for c in wanted if not store.exists("corpora", c)]
    if missing:
        notes.append(f"the lineage trained on {', '.join(missing)}, no longer in the store; not evaluated")
    return [c for c in wanted if c not in missing]


def _tokenizer_problems(store: Store, metas: dict, opened: dict) -> list[str]:
    """A sentence for each corpus prepared with another tokenizer than a version's (or than one its
    tokenizer extends: those ids keep their strings, data/tokenizer_extend.py)."""
    problems = []
    for v, meta in metas.items():
        want = meta.tokenizer_fingerprint
        readable = {want} | base_fingerprints(store.path("versions", v))
        for c, corpus in opened.items():
            if want and corpus.tokenizer_fingerprint not in readable:
                problems.append(
                    f"corpus {c!r} was prepared with another tokenizer than version {v!r}'s "
                    f"(fingerprint {corpus.tokenizer_fingerprint[:12]} vs {want[:12]}); prepare it again with --tokenizer {v}"
                )
    return problems


def check(
    store: Store,
    versions: Sequence[str],
    *,
    corpora: Sequence[str] | None = None,
    tasks: Sequence[str] = (),
    include_paths: Sequence[str | Path] = (),
    limit: int | None = None,
    num_fewshot: int | None = None,
    batch_size: int | str = "auto",
    seq_len: int | None = None,
    eval_tokens: int = DEFAULT_EVAL_TOKENS,
    micro_batch: int = DEFAULT_EVAL_MICRO_BATCH,
    core: str | Path | None = None,
) -> Plan:
    """Resolve and check an evaluation, or raise one ConfigError listing every problem."""
    problems = _number_problems(limit=limit, num_fewshot=num_fewshot, seq_len=seq_len, eval_tokens=eval_tokens,
                                micro_batch=micro_batch, batch_size=batch_size)
    notes = []
    metas = {}
    for name in dict.fromkeys(versions):
        try:
            metas[name] = read_version(store, name)
        except RenewError as e:
            problems.append(str(e))
    wanted = list(dict.fromkeys(corpora)) if corpora is not None else _lineages_corpora(store, metas, notes)
    opened = open_corpora(store, wanted, problems)
    problems += _tokenizer_problems(store, metas, opened)
    recorded = [m.seq_len for m in metas.values() if m.seq_len]
    positions = [m.max_positions for m in metas.values() if m.max_positions]
    length = seq_len or (min(recorded) if recorded else min([DEFAULT_SEQ_LEN, *positions]))
    for v, meta in metas.items():
        if meta.max_positions and length > meta.max_positions:
            problems.append(f"--seq-len {length} is longer than the {meta.max_positions} positions version {v!r} supports; pass a shorter --seq-len")
    for c, corpus in opened.items():
        if heldout_windows(corpus.val, length, eval_tokens) == 0:
            notes.append(f"corpus {c!r} holds fewer than {length + 1} held-out tokens; no loss is measured on it")
    plan = Plan(list(metas), opened, length, eval_tokens, micro_batch, list(dict.fromkeys(tasks)), notes=notes,
                num_fewshot=num_fewshot, limit=limit, batch_size=int(batch_size) if str(batch_size).isdigit() else batch_size)
    if plan.tasks:
        from renewlm.eval.harness import task_manager

        try:
            plan.manager = task_manager(plan.tasks, include_paths)
            plan.core = load_spec(core)
        except RenewError as e:
            problems.append(str(e))
    elif not opened and not problems:
        problems.append("there is nothing to evaluate: no corpus in the versions' lineages; pass --corpora or --tasks")
    if problems:
        raise ConfigError("the evaluation cannot start:\n- " + "\n- ".join(dict.fromkeys(problems)) if len(problems) > 1 else problems[0])
    return plan


def evaluate_versions(store: Store, plan: Plan, say: Callable[[str], None] = lambda line: None) -> dict:
    """Every number of the plan: `{"settings", "corpora", "versions": {name: {heldout, tasks, core_average,
    summary}}, "notes"}`. Writes nothing."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def autocast():  # as a run's `precision: auto`: bf16 on CUDA, fp32 on CPU, so the losses compare
        return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    metas = {m.name: m for m in list_versions(store)}
    out: dict = {}
    for name in plan.versions:
        started = time.perf_counter()
        model, tokenizer = load_version(store, name)
        model.to(device)
        mask = metas[name].document_mask  # attention as its run trained: within each document, or across the window
        heldout = HeldOut(
            plan.corpora, seq_len=plan.seq_len, max_tokens=plan.eval_tokens, micro_batch=plan.micro_batch,
            dist_=Dist.single(device), autocast=autocast, document_mask=mask,
        )
        losses = heldout.evaluate(model)
        entry: dict = {"heldout": {
            c: {"loss": loss, "perplexity": perplexity(loss), "document_mask": mask,
                **per_byte(loss, plan.corpora[c].val, tokenizer, seq_len=plan.seq_len, max_tokens=plan.eval_tokens)}
            for c, loss in losses.items()
        }}
        if plan.tasks:
            from renewlm.eval.harness import run_tasks

            entry["tasks"] = run_tasks(
                model, tokenizer, plan.tasks, manager=plan.manager, num_fewshot=plan.num_fewshot,
                limit=plan.limit, batch_size=plan.batch_size, autocast=autocast,
            )
            entry["core_average"] = core_average(entry["tasks"], plan.core)
        out[name] = entry
        del model
        say(f"evaluated {name} in {time.perf_counter() - started:.1f} s")
    lineages = {v: version_lineage(store, v, metas) for v in plan.versions}
    for v, summary in summarize({v: {c: e["loss"] for c, e in out[v]["heldout"].items()} for v in out}, lineages).items():
        out[v]["summary"] = summary
    settings = {"seq_len": plan.seq_len, "eval_tokens": plan.eval_tokens, "device": device.type,
                "precision": "bf16" if device.type == "cuda" else "fp32"}
    if plan.tasks:
        settings.update(num_fewshot=plan.num_fewshot, limit=plan.limit)
    return {"settings": settings, "corpora": list(plan.corpora), "versions": out, "notes": plan.notes}


def version_lineage(store: Store, name: str, metas: dict[str, VersionRecord] | None = None) -> Lineage:
    """What the summary compares version `name` with (`metas`: every record by name, as `list_versions`
    reads them).

    A release branched off a trunk (path switching) is compared with the release it was updated from
    (`display_parent`: the release that branched off its trunk's parent, or that parent itself), not
    with its trunk: the user lists releases, renewlm keeps the trunks, and the trunk already trained on
    the update's data, so against it nothing would count as new and replayed corpora would be starred.
    Its earlier versions are its ancestors and every release before it in the series, with theirs.
    """
    metas = metas if metas is not None else {m.name: m for m in list_versions(store)}
    meta = metas[name]
    ancestors = [m.name for m in lineage(store, name, metas) if m.name != name]
    if meta.trunk in metas:
        parents = [display_parent(meta, metas) or meta.trunk]
        release, seen = parents[0], {name}
        while release is not None and release not in seen:  # back along the series: each release's own history counts as earlier
            seen.add(release)
            ancestors += [m.name for m in lineage(store, release, metas)]
            release = display_parent(metas[release], metas) if metas[release].trunk in metas else None
        ancestors = list(dict.fromkeys(a for a in ancestors if a != name))
    else:
        parents = [p for p in meta.parent_names if p in metas]
    before = list(dict.fromkeys(c for p in parents for c in lineage_corpora(store, p)))
    return lineage_of(meta.corpora, parents, ancestors, before)


def record(store: Store, result: dict) -> None:
    """Merge `result` into each version's evaluations.json (one rename per version): a corpus or task
    evaluated again replaces its earlier entry; others stay."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    settings = result["settings"]
    for name, entry in result["versions"].items():
        with store.lock("versions", name):  # two `renewlm eval`s of one version: neither loses the other's results
            _merge(store, name, entry, settings, stamp)


def _merge(store: Store, name: str, entry: dict, settings: dict, stamp: str) -> None:
    path = store.path("versions", name) / EVALUATIONS
    old = read_evaluations(store, name)
    new = {"format": 1, "heldout": dict(old.get("heldout", {})), "tasks": dict(old.get("tasks", {}))}
    for c, numbers in entry["heldout"].items():
        new["heldout"][c] = {**numbers, "seq_len": settings["seq_len"], "eval_tokens": settings["eval_tokens"],
                             "precision": settings["precision"], "evaluated": stamp}
    for task, numbers in entry.get("tasks", {}).items():
        new["tasks"][task] = {**numbers, "num_fewshot": settings.get("num_fewshot"), "limit": settings.get("limit"), "evaluated": stamp}
    for key in ("core_average", "summary"):
        if entry.get(key) is not None:
            new[key] = {**entry[key], "evaluated": stamp}
        elif key in old:
            new[key] = old[key]
    write_json(path, new)
