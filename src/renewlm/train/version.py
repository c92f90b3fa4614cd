"""The end of a run: its model, tokenizer and record written as a version in the store.

Every process joins (gathering the full weights, and a trunk's optimizer state, are collectives);
the main process writes. A run whose version cannot be written keeps a checkpoint of its last step,
so running the same command again resumes there and writes the version.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from renewlm.errors import TrainingError
from renewlm.eval.evaluator import HeldOut
from renewlm.model.parallel import tied_head_key, unwrapped
from renewlm.train.optimizer_state import save_optimizer
from renewlm.train.config import RunConfig
from renewlm.train.run import Run, ema_version_name
from renewlm.train.step import heldout_name, save_checkpoint
from renewlm.versions import Paradigm, lineage_corpora, write_version


def _paradigm(cfg: RunConfig) -> Paradigm | None:
    if cfg.from_scratch:
        return "retrain"
    if cfg.kind == "trunk" or cfg.load_optimizer:
        return "switch"
    return "continue" if cfg.parent else None


def version_info(run: Run, results: dict[str, dict]) -> dict:
    """The version's record: where it came from, what it read, what it cost and what it measured."""
    cfg = run.cfg
    trunk = cfg.kind == "trunk"
    heldout = heldout_name(run)
    # What each corpus gave the run (samples [data_offset, end) of the stream): replay splits by it later.
    read = run.stream.counts_before(run.stream.total_samples) - run.stream.counts_before(cfg.data_offset)
    corpus_tokens = {name: int(n) * cfg.seq_len for name, n in zip(run.stream.names, read) if n}
    seen = set(lineage_corpora(run.store, cfg.parent)) if cfg.parent and run.store.exists("versions", cfg.parent) else set()
    branch = cfg.load_optimizer and not trunk
    return {
        "parents": [{"name": cfg.parent, "weight": 1.0}] if cfg.parent else [],
        "kind": "pretrain" if cfg.preset is not None and not trunk else cfg.kind,
        "paradigm": _paradigm(cfg),
        "trunk": cfg.parent if branch else None,  # a release branched off this trunk (path switching)
        "run_id": run.run_id,
        "corpora": cfg.mixture.corpus_names(),
        "corpus_tokens": corpus_tokens,
        # Tokens of data the lineage had not trained on: what a retrain on everything it has seen must read.
        "data_tokens": sum(t for c, t in corpus_tokens.items() if c not in seen),
        "mixture": cfg.mixture.model_dump(mode="json"),
        "schedule": cfg.schedule.model_dump(mode="json"),
        "seq_len": cfg.seq_len,
        "batch_tokens": cfg.batch_tokens,
        "document_mask": cfg.document_mask,
        "steps": run.state["step"],
        "skipped_steps": run.state["skipped_steps"],
        "tokens": run.state["tokens"],
        "flops": run.flops_per_token * run.state["tokens"] + cfg.generation_flops,
        "generation_flops": cfg.generation_flops,
        "prediction": None if cfg.prediction is None else cfg.prediction.model_dump(mode="json"),
        "seconds": round(run.state["seconds"], 3),
        "device": run.dist.hardware(),
        "losses": results.get(heldout, {}),
        "evaluations": {name: numbers for name, numbers in results.items() if name != heldout},
        "start": run.start,
        "resumed_at_steps": run.state.get("resumed_at", []),
        "model_source": run.model_info,
    }


def _full_weights(run: Run) -> dict:
    """The whole model's weights on the main process's CPU (a collective under FSDP)."""
    full = get_model_state_dict(run.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    full.pop(tied_head_key(run.model), None)  # gathered as its own copy: saved, it would double a tied embedding
    return full


def _average_record(run: Run, info: dict, key: str, losses: dict[str, float]) -> dict:
    """The record of an average written beside NAME: NAME's, less what only training has (0 tokens, FLOPs and steps
    beyond NAME's run, whose id it keeps), with NAME as its one parent and the average's held-out losses at the end.
    An EMA (`ema`) records its decay, and a trunk's is a release branched off it; a window (`average`) is an
    averaged release of the trunk, recording the steps it averages (1-based, as metrics.jsonl counts them)."""
    cfg, trunk = run.cfg, run.cfg.kind == "trunk"
    record = {
        **info, "parents": [{"name": cfg.name, "weight": 1.0}], "kind": "release", "trunk": cfg.name if trunk else info.get("trunk"),
        "corpus_tokens": {}, "data_tokens": 0, "steps": 0, "skipped_steps": None, "tokens": 0, "flops": 0.0, "generation_flops": 0.0,
        "seconds": 0.0, "losses": losses, "evaluations": {}, "resumed_at_steps": [], "prediction": None,
    }
    if key == "ema":
        return {**record, "ema": cfg.ema}
    return {**record, "paradigm": "switch", "averaged_steps": [run.window.first_step + 1, run.state["step"]]}


def _averages(run: Run, info: dict) -> list[tuple[str, dict, dict]]:
    """(version name, record, whole weights) of each average the run keeps; every process joins (gathers, evaluation)."""
    heldout = next((e for e in run.evaluators if isinstance(e, HeldOut)), None)
    out = []
    for key, average in run.averages.items():
        with average.applied():
            # Copied: in one process without FSDP the state dict holds the parameters themselves, given their weights back after.
            weights = {name: tensor.clone() for name, tensor in _full_weights(run).items()}
            losses = heldout.evaluate(run.model) if heldout is not None else {}
        name = ema_version_name(run.cfg.name) if key == "ema" else run.cfg.average.release
        out.append((name, _average_record(run, info, key, losses), weights))
    return out


def write_run_version(run: Run, results: dict[str, dict]) -> dict:
    """Write the finished run as version `cfg.name`, and first each average it keeps (NAME-ema, the `average`
    release); every process calls this; return NAME's record. All are written or, on a failure, none is kept."""
    cfg, d = run.cfg, run.dist
    full = _full_weights(run)
    info = version_info(run, results)
    averages = _averages(run, info)
    trunk = cfg.kind == "trunk"
    optimizer_folder = run.folder / "optimizer"
    if trunk:  # a collective: every process writes its shard of the optimizer state
        save_optimizer(optimizer_folder, run.model, run.optimizer)
    failure = None
    if d.is_main:

        def add_optimizer(folder):
            if trunk:  # moved, not copied; should the version write fail, the run is checkpointed below
                os.rename(optimizer_folder, folder / "optimizer")

        try:
            with unwrapped(run.model) as model:  # config.json and version.json name LlamaForCausalLM, not FSDPLlamaForCausalLM
                written = []
                try:
                    for name, record, weights in averages:
                        written.append(write_version(run.store, name, model, run.tokenizer, record, state_dict=weights))
                    path = write_version(run.store, cfg.name, model, run.tokenizer, info, state_dict=full, extra=add_optimizer)
                except BaseException:
                    for folder in written:  # their parent was not written: a rerun resumes and writes them all
                        shutil.rmtree(folder, ignore_errors=True)
                    raise
            info["path"] = str(path)
        except Exception as e:  # told to every process below, so none waits for the main one forever
            failure = e
    message = d.first_message(f"{type(failure).__name__}: {failure}" if failure is not None else None)
    if message:  # the run ends without its version: checkpoint it (a finished run keeps none) so a rerun resumes here
        with contextlib.suppress(TrainingError):  # a full disk fails both; the version's error is the one to see
            save_checkpoint(run)
            run.checkpointer.wait()
    if failure is not None:
        raise failure
    if message:
        raise TrainingError(f"the main process could not write version {cfg.name!r} ({message}); rerun to resume")
    if d.is_main and not cfg.keep_checkpoints_when_finished:  # each is the weights and AdamW's two moments (3x the
        shutil.rmtree(run.checkpointer.folder, ignore_errors=True)  # weights), and the version now ends the run
    return info
