"""The training loop. It reads top to bottom: set the LR, maybe evaluate, forward/backward over the
micro-batches, clip, step (or skip a non-finite one), log, maybe checkpoint. Everything else was
built by `prepare_run` before the first step.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import resource
import socket
import shutil
import signal
import time
from collections.abc import Iterator

import torch
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from renewlm.data.stream import rank_indices
from renewlm.eval.evaluator import HeldOut, evaluate_due
from renewlm.errors import RenewError, TrainingError
from renewlm.model.flops import peak_flops
from renewlm.model.loss import token_loss
from renewlm.model.parallel import tied_head_key, unwrapped
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
        with run_lock(store, cfg.name, dist_, parent=cfg.parent):
            try:
                return _loop(prepare_run(cfg, store, dist_, fresh=fresh))
            except BaseException:
                if dist_.is_main and folder.is_dir() and not any((folder / "checkpoints").glob("step-*")):
                    shutil.rmtree(folder, ignore_errors=True)
                raise
    finally:
        teardown()


@contextlib.contextmanager
def run_lock(store: Store, name: str, dist_, parent: str | None = None):
    """The main process locks the run, naming its parent (kept from `rm` meanwhile); every process learns the outcome."""
    with contextlib.ExitStack() as stack:
        refused = None
        if dist_.is_main:
            try:
                stack.enter_context(store.lock("runs", name, about={"parent": parent} if parent else None))
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
    cfg, d, state = run.cfg, run.dist, run.state
    total, batch = run.schedule.total_steps, cfg.batch_samples
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
    pending = Pending(run, metrics, display)
    collector = GarbageCollection(every=GC_EVERY)
    results: dict[str, dict] = {}
    try:
        while state["step"] < total:
            step = state["step"]
            if any(e.due(step, total) for e in run.evaluators):
                pending.flush(stop)  # evaluation waits for the device anyway; keep its time out of the steps'
                evaluate(run, step, metrics, display)
            train_step(run, step, pending)
            state["step"] += 1
            state["tokens"] += batch * cfg.seq_len
            collector.step(state["step"])
            checkpoint_due = bool(cfg.checkpoint_every) and state["step"] % cfg.checkpoint_every == 0 and state["step"] < total
            read_now = (
                state["step"] % cfg.log_every == 0 or state["step"] == total or checkpoint_due
                or (stop.requested and not d.distributed)  # alone, a stop needs no vote: act on it at once
            )
            stopping = pending.flush(stop) if read_now else False
            if stopping or checkpoint_due:
                save_checkpoint(run)
            if stopping:
                run.checkpointer.wait()
                display.close()
                raise KeyboardInterrupt(f"interrupted at step {state['step']}: its checkpoint is complete and nothing "
                                        f"half-written was kept; run the same command again to resume")
        run.checkpointer.wait()
        results = evaluate(run, state["step"], metrics, display)
    finally:
        collector.close()
        run.checkpointer.abandon()
        stop.close()
        display.close()
        metrics.close()
    return _write_version(run, results)


def save_checkpoint(run: Run) -> None:
    """Start writing a checkpoint of the run as it is now (the data counter says where the stream goes on)."""
    cfg, state = run.cfg, run.state
    run.checkpointer.save(run.model, run.optimizer, dict(state, next_sample=cfg.data_offset + state["step"] * cfg.batch_samples))


GC_EVERY = 50  # steps between collections of Python's young generations (collection off in between)


class GarbageCollection:
    """Python's cyclic collector off during training and run every `every` steps, on every process at
    the same step: an automatic collection can pause one process for a while, and the others wait
    for it at the next collective (torchtitan does the same)."""

    def __init__(self, every: int):
        self.every = every
        self.was_enabled = gc.isenabled()
        gc.disable()
        gc.collect()

    def step(self, step: int) -> None:
        if step % self.every == 0:
            gc.collect(1)

    def close(self) -> None:
        if self.was_enabled:
            gc.enable()


def micro_batches(run: Run, samples) -> Iterator[tuple[int, torch.Tensor]]:
    """(token sum, tokens on the device as int64) of each micro-batch of `samples`.

    Tokens travel in the corpus's own dtype (uint16 for vocabularies up to 65,536: a quarter of
    int64's bytes) from pinned memory, and the next micro-batch's copy starts before this one is
    used, so on CUDA the copy overlaps the compute. The token sum is a fingerprint of the data read:
    resumed and resharded runs must read the same.
    """
    d, mb = run.dist, run.cfg.micro_batch
    cuda = d.device.type == "cuda"

    def send(m: int) -> tuple[int, torch.Tensor]:
        block = run.stream.read(samples[m * mb : (m + 1) * mb])
        host = torch.from_numpy(block)
        if cuda:
            host = host.pin_memory()
        return int(block.sum()), host.to(d.device, non_blocking=True)

    following = send(0)
    for m in range(run.micro_steps):
        token_sum, tokens = following
        if m + 1 < run.micro_steps:
            following = send(m + 1)
        yield token_sum, tokens.long()


def train_step(run: Run, step: int, pending: Pending) -> None:
    """One optimizer step, queued on the device without waiting for it.

    No host sync: the loss and gradient norm stay on the device until `pending.flush` reads a whole
    window of steps at once, and a non-finite step is skipped on the device: fused AdamW's
    `found_inf` leaves the weights, moments and step count as they were (GradScaler's mechanism).
    Collectives (more than one process): the all-reduce of [loss, non-finite] below, and under FSDP
    the gradient norm's (`full_tensor`) besides FSDP's own gathers and reduce-scatters.
    """
    cfg, d, model, optimizer = run.cfg, run.dist, run.model, run.optimizer
    lr = run.schedule.lr(step)
    set_lr(optimizer, lr)
    started = time.perf_counter()
    shards = hasattr(model, "set_requires_gradient_sync")
    mine = rank_indices(cfg.data_offset + step * cfg.batch_samples, cfg.batch_samples, d.rank, d.world)
    loss_sum = torch.zeros((), device=d.device)
    token_sum = 0
    for m, (block_sum, tokens) in enumerate(micro_batches(run, mine)):
        token_sum += block_sum
        if shards and cfg.grad_sync == "last_micro_batch":  # unsharded parameters and gradients until the last
            last = m == run.micro_steps - 1
            model.set_requires_gradient_sync(last)
            model.set_reshard_after_backward(last)
        loss = token_loss(model, tokens) / run.micro_steps
        loss.backward()
        loss_sum += loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optimizer.grad_clip or math.inf)
    if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP: the same global norm on every process
        grad_norm = grad_norm.full_tensor()
    # [mean loss, non-finite anywhere]: every process skips the same steps.
    stats = torch.stack([loss_sum / d.world, (~torch.isfinite(loss_sum) | ~torch.isfinite(grad_norm)).float()])
    if d.distributed:
        torch.distributed.all_reduce(stats)
    optimizer.found_inf = (stats[1] > 0).float()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    pending.add(step, lr, stats, grad_norm.detach(), token_sum, time.perf_counter() - started)


class Pending:
    """Steps queued on the device whose numbers are not read yet: read all at once every `log_every`
    steps (one host sync and one collective for the window), then logged, counted and checked."""

    def __init__(self, run: Run, metrics: MetricsLog, display: ProgressDisplay):
        self.run, self.metrics, self.display = run, metrics, display
        self.peak = peak_flops(run.dist.device, run.cfg.peak_tflops)
        self.steps: list[tuple[int, float, int]] = []
        self.values: list[torch.Tensor] = []
        self.seconds = 0.0

    def add(self, step: int, lr: float, stats: torch.Tensor, norm: torch.Tensor, token_sum: int, seconds: float) -> None:
        self.steps.append((step, lr, token_sum))
        self.values.append(torch.cat([stats, norm.reshape(1).to(stats.dtype)]))
        self.seconds += seconds

    def flush(self, stop: StopSignal) -> bool:
        """Read, log and check the window; True when any process was asked to stop (all stop together)."""
        run, d, state = self.run, self.run.dist, self.run.state
        waited = time.perf_counter()
        values = torch.stack(self.values).tolist() if self.values else []  # the one host sync: waits for the steps
        *token_sums, stop_votes = d.sum([float(t) for _, _, t in self.steps] + [float(stop.requested)])
        self.seconds += time.perf_counter() - waited
        seconds = self.seconds / max(1, len(self.steps))  # the device's time per step, averaged over the window
        batch_tokens = run.cfg.batch_samples * run.cfg.seq_len
        last, memory = (self.steps[-1][0] if self.steps else 0), _peak_memory_gib(d.device)
        for (step, lr, _), (loss, bad, norm), token_sum in zip(self.steps, values, token_sums):
            if bad:
                state["bad_steps"] += 1
                state["skipped_steps"] += 1
            else:
                state["bad_steps"] = 0
            state["seconds"] += seconds
            record = {
                "step": step + 1, "tokens": state["tokens"] - batch_tokens * (last - step),
                "lr": lr, "loss": loss, "grad_norm": norm, "tokens_per_second": batch_tokens / seconds, "seconds": seconds,
                "skipped_steps": state["skipped_steps"], "batch_token_sum": int(token_sum),
            }
            if self.peak:
                record["mfu"] = run.flops_per_token * record["tokens_per_second"] / (self.peak * d.world)
            record["memory_gib"] = memory
            self.metrics.write(record)
            self.display.step(record)
            if state["bad_steps"] >= run.cfg.max_bad_steps:
                raise TrainingError(
                    f"{state['bad_steps']} non-finite losses in a row at step {step}; the skipped steps left the weights as "
                    f"they were and the last checkpoint is kept in {run.checkpointer.folder}; lower the learning rate or "
                    "check the data, then rerun"
                )
        self.steps, self.values, self.seconds = [], [], 0.0
        return stop_votes > 0


def _peak_memory_gib(device: torch.device) -> float:
    """Peak memory since the last call (the window's): the device's on CUDA, the process's resident peak on CPU."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


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


def _write_version(run: Run, results: dict[str, dict]) -> dict:
    cfg, d = run.cfg, run.dist
    full = get_model_state_dict(run.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    full.pop(tied_head_key(run.model), None)  # gathered as its own copy: saved, it would double a tied embedding
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
            if trunk:  # moved, not copied; should the version write fail, the run is checkpointed below
                os.rename(optimizer_folder, folder / "optimizer")

        try:
            with unwrapped(run.model) as model:  # config.json and version.json name LlamaForCausalLM, not FSDPLlamaForCausalLM
                path = write_version(run.store, cfg.name, model, run.tokenizer, info, state_dict=full, extra=add_optimizer)
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
