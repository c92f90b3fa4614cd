"""The training loop. It reads top to bottom: set the LR, maybe evaluate, forward/backward over the
micro-batches, clip, step (or skip a non-finite one), log, maybe checkpoint. Everything else was
built by `prepare_run` before the first step.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import socket
import shutil
import signal
import time

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from renewlm.data.stream import rank_indices
from renewlm.eval.evaluator import HeldOut, evaluate_due
from renewlm.errors import RenewError, TrainingError
from renewlm.model.flops import peak_flops
from renewlm.model.loss import token_loss
from renewlm.model.parallel import unwrapped
from renewlm.optim.schedule import set_lr
from renewlm.store import Store
from renewlm.train.checkpoint import save_optimizer
from renewlm.train.config import RunConfig
from renewlm.train.distributed import setup, teardown
from renewlm.train.metrics import MetricsLog, ProgressDisplay
from renewlm.train.run import Run, describe_start, prepare_run
from renewlm.versions import lineage_corpora, list_versions, write_version


class StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and exits."""

    def __init__(self):
        self.requested = False
        self._old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        self.requested = True

    def close(self):
        for s, handler in self._old.items():
            signal.signal(s, handler)


def train(cfg: RunConfig, store: Store, *, fresh: bool = False) -> dict:
    """Run `cfg` to the end (resuming if its run folder has a checkpoint) and write its version.

    One writer per run: the main process holds the run's lock. A run that fails before it has a
    checkpoint leaves no run folder behind (it has nothing to resume), so the corrected command
    needs no --fresh.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # renewlm reports progress itself
    folder = store.path("runs", cfg.name)  # checks the name before anything else
    dist_ = setup()
    try:
        with run_lock(store, cfg.name, dist_):
            try:
                return _loop(prepare_run(cfg, store, dist_, fresh=fresh))
            except BaseException:
                if dist_.is_main and folder.is_dir() and not any((folder / "checkpoints").glob("step-*")):
                    shutil.rmtree(folder, ignore_errors=True)
                raise
    finally:
        teardown()


@contextlib.contextmanager
def run_lock(store: Store, name: str, dist_):
    """The main process locks the run; every process learns whether it got the lock (one collective)."""
    with contextlib.ExitStack() as stack:
        refused = None
        if dist_.is_main:
            try:
                stack.enter_context(store.lock("runs", name))
            except RenewError as e:
                refused = e
        if dist_.sum([float(refused is not None)])[0]:
            raise refused or TrainingError(f"run {name!r} is being written by another process; see the main process's message")
        yield


def heldout_name(run: Run) -> str:
    """The name the run's held-out-loss evaluator logs under (`eval` unless the run file renames it)."""
    return next((e.name for e in run.evaluators if isinstance(e, HeldOut)), "eval")


def evaluate(run: Run, step: int, metrics: MetricsLog, display: ProgressDisplay) -> dict:
    """Every evaluator due at `step`, logged; the held-out losses (evaluator `eval`) are returned."""
    results = evaluate_due(run.evaluators, run.model, step, run.schedule.total_steps)
    if results:
        metrics.write({"step": step, "tokens": run.state["tokens"], **results})
        display.evaluation(step, results.get(heldout_name(run), {}))
    return results


def _loop(run: Run) -> dict:
    cfg, d, model, optimizer, state = run.cfg, run.dist, run.model, run.optimizer, run.state
    total, batch = run.schedule.total_steps, cfg.batch_samples
    mb, peak = cfg.micro_batch, peak_flops(d.device, cfg.peak_tflops)
    display = ProgressDisplay(total_steps=total, start_step=state["step"], enabled=d.is_main, log_every=cfg.log_every, title=cfg.name)
    display.print(describe_start(run))
    for note in run.notes:
        display.print(note)
    display.print(describe_plan(run, measured_speed(run)))
    if run.unmeasured:
        display.print(f"note: the lineage trained on {', '.join(run.unmeasured)}, no longer in the store; forgetting on them is not measured")
    metrics = MetricsLog(
        run.folder / "metrics.jsonl", enabled=d.is_main, resume_step=state["step"] if run.resumed else None,
        trackers=cfg.trackers, run_id=run.run_id, config=cfg.model_dump(mode="json"),
    )
    if metrics.dropped_lines:
        display.print(f"note: dropped {metrics.dropped_lines} unreadable line(s) of {metrics.path} (a process killed mid-write)")
    stop = StopSignal()
    shards = hasattr(model, "set_requires_gradient_sync")
    max_norm = cfg.optimizer.grad_clip or math.inf
    results: dict[str, dict] = {}
    try:
        while state["step"] < total:
            step = state["step"]
            evaluate(run, step, metrics, display)
            lr = run.schedule.lr(step)
            set_lr(optimizer, lr)
            started = time.perf_counter()
            mine = rank_indices(cfg.data_offset + step * batch, batch, d.rank, d.world)
            loss_sum = torch.zeros((), device=d.device)
            token_sum = 0  # a fingerprint of the data read: resumed and resharded runs must read the same
            for m in range(run.micro_steps):
                block = run.stream.read(mine[m * mb : (m + 1) * mb])
                token_sum += int(block.sum())
                tokens = torch.from_numpy(block).to(d.device, non_blocking=True)
                if shards and cfg.grad_sync == "last_micro_batch":  # unsharded parameters and gradients until the last
                    last = m == run.micro_steps - 1
                    model.set_requires_gradient_sync(last)
                    model.set_reshard_after_backward(last)
                loss = token_loss(model, tokens) / run.micro_steps
                loss.backward()
                loss_sum += loss.detach()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP: the same global norm on every process
                grad_norm = grad_norm.full_tensor()
            # note: two host syncs a step (loss_sum.item() and float(grad_norm): each waits for the step's
            # kernels on CUDA), then one all-reduce of four numbers: mean loss, norm, data fingerprint, and
            # whether any process was asked to stop (all must checkpoint and stop at the same step). The
            # norm's full_tensor() above is one more collective under FSDP.
            loss_value, norm, token_sum, stop_votes = d.sum(
                [loss_sum.item() / d.world, float(grad_norm) / d.world, token_sum, float(stop.requested)]
            )
            if math.isfinite(loss_value) and math.isfinite(norm):
                optimizer.step()
                state["bad_steps"] = 0
            else:
                state["bad_steps"] += 1
                state["skipped_steps"] += 1
            optimizer.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - started
            state["seconds"] += seconds
            state["step"] += 1
            state["tokens"] += batch * cfg.seq_len
            tokens_per_second = batch * cfg.seq_len / seconds
            record = {
                "step": state["step"], "tokens": state["tokens"], "lr": lr, "loss": loss_value,
                "grad_norm": norm, "tokens_per_second": tokens_per_second, "seconds": seconds,
                "skipped_steps": state["skipped_steps"], "batch_token_sum": int(token_sum),
            }
            if peak:
                record["mfu"] = run.flops_per_token * tokens_per_second / (peak * d.world)
            if d.device.type == "cuda":
                record["memory_gib"] = torch.cuda.max_memory_allocated(d.device) / 2**30
                torch.cuda.reset_peak_memory_stats(d.device)  # each step reports its own peak
            else:  # peak resident memory of this process (Linux reports KiB)
                record["memory_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            metrics.write(record)
            display.step(record)
            if state["bad_steps"] >= cfg.max_bad_steps:
                raise TrainingError(
                    f"{state['bad_steps']} non-finite losses in a row at step {step}; the last good checkpoint is "
                    f"kept in {run.checkpointer.folder}; lower the learning rate or check the data, then rerun"
                )
            stopping = stop_votes > 0
            if stopping or (cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0) or state["step"] == total:
                run.checkpointer.save(model, optimizer, dict(state, next_sample=cfg.data_offset + state["step"] * batch))
            if stopping:
                display.close()
                display.print(f"stopped at step {state['step']}; checkpoint written; run the same command again to resume")
                raise KeyboardInterrupt
        results = evaluate(run, state["step"], metrics, display)
    finally:
        stop.close()
        display.close()
        metrics.close()
    return _write_version(run, results)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def measured_speed(run: Run) -> tuple[float, str] | None:
    """Tokens per second of the newest version trained on this host and device with the same model size,
    world size and sequence length: an estimate of this run's speed before it starts."""
    d, here = run.dist, socket.gethostname()
    best = None
    for meta in list_versions(run.store):
        device = meta.get("device") or {}
        same = (
            device.get("host") == here and device.get("name") == device_name(d.device) and device.get("count") == d.world
            and (meta.get("model") or {}).get("total") == run.parameters["total"] and meta.get("seq_len") == run.cfg.seq_len
        )
        if same and meta.get("seconds") and (best is None or meta["created"] > best["created"]):
            best = meta
    return (best["tokens"] / best["seconds"], best["name"]) if best else None


def describe_plan(run: Run, speed: tuple[float, str] | None) -> str:
    """Planned steps and tokens, and the time they take at a speed measured here before."""
    cfg, total = run.cfg, run.schedule.total_steps
    left = (total - run.state["step"]) * cfg.batch_tokens
    line = f"plan: {total:,} steps × {cfg.batch_tokens:,} tokens = {total * cfg.batch_tokens:,} tokens"
    if run.state["step"]:
        line += f", {left:,} to go"
    if speed is None:
        return line + "; no speed measured on this machine for this model yet"
    tokens_per_second, name = speed
    return line + f"; about {_duration(left / tokens_per_second)} at {tokens_per_second:,.0f} tok/s (measured here by {name})"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _paradigm(cfg: RunConfig) -> str | None:
    if cfg.from_scratch:
        return "retrain"
    if cfg.kind == "trunk" or cfg.load_optimizer:
        return "switch"
    return "continue" if cfg.parent else None


def _tied_head_key(model) -> str | None:
    """The state-dict key of a head that shares the input embedding's weight, or None."""
    head = model.get_output_embeddings()
    if head is None or head.weight is not model.get_input_embeddings().weight:
        return None
    return next(f"{name}.weight" for name, module in model.named_modules() if module is head)


def _write_version(run: Run, results: dict[str, dict]) -> dict:
    cfg, d = run.cfg, run.dist
    full = get_model_state_dict(run.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    full.pop(_tied_head_key(run.model), None)  # gathered as its own copy: saved, it would double a tied embedding
    trunk = cfg.kind == "trunk"
    heldout = heldout_name(run)
    optimizer_folder = run.folder / "optimizer"
    if trunk:  # a collective: every process writes its shard of the optimizer state
        save_optimizer(optimizer_folder, run.model, run.optimizer)
    # What each corpus gave the run (samples [data_offset, end) of the stream): replay splits by it later.
    read = run.stream.counts_before(run.stream.total_samples) - run.stream.counts_before(cfg.data_offset)
    corpus_tokens = {name: int(n) * cfg.seq_len for name, n in zip(run.stream.names, read) if n}
    seen = set(lineage_corpora(run.store, cfg.parent)) if cfg.parent and run.store.exists("versions", cfg.parent) else set()
    branch = cfg.load_optimizer and not trunk
    info = {
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
        "steps": run.state["step"],
        "skipped_steps": run.state["skipped_steps"],
        "tokens": run.state["tokens"],
        "flops": run.flops_per_token * run.state["tokens"],
        "seconds": round(run.state["seconds"], 3),
        "device": {"name": device_name(d.device), "count": d.world, "host": socket.gethostname()},
        "losses": results.get(heldout, {}),
        "evaluations": {name: numbers for name, numbers in results.items() if name != heldout},
        "start": run.start,
        "resumed_at_steps": run.state.get("resumed_at", []),
        "model_source": run.model_info,
    }
    failure = None
    if d.is_main:

        def add_optimizer(folder):
            if trunk:  # moved, not copied: the final checkpoint still holds it should the version write fail
                os.rename(optimizer_folder, folder / "optimizer")

        try:
            with unwrapped(run.model) as model:  # config.json and version.json name LlamaForCausalLM, not FSDPLlamaForCausalLM
                path = write_version(run.store, cfg.name, model, run.tokenizer, info, state_dict=full, extra=add_optimizer)
            info["path"] = str(path)
        except Exception as e:  # told to every process below, so none waits for the main one forever
            failure = e
    message = d.first_message(f"{type(failure).__name__}: {failure}" if failure is not None else None)
    if failure is not None:
        raise failure
    if message:
        raise TrainingError(f"the main process could not write version {cfg.name!r} ({message}); rerun to resume")
    return info
