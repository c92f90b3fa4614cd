"""The training loop. It reads top to bottom: set the LR, maybe evaluate, forward/backward over the
micro-batches, clip, step (or skip a non-finite one), log, maybe checkpoint. Everything else was
built by `prepare_run` before the first step (run.py); the step and what it calls are step.py's, and
the version written at the end is version.py's.
"""

from __future__ import annotations

import contextlib
import gc
import shutil
import signal
from pathlib import Path

from renewlm.distributed import setup, teardown
from renewlm.errors import RenewError, TrainingError
from renewlm.store import Store
from renewlm.train.config import RunConfig
from renewlm.train.metrics import MetricsLog, ProgressDisplay
from renewlm.train.run import Run, describe_start, prepare_run
from renewlm.train.step import Pending, evaluate, save_checkpoint, train_step
from renewlm.train.version import write_run_version
from renewlm.train.run_record import Speed, measured_speed, read_identity


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


def _loop(run: Run) -> dict:
    cfg, d, state = run.cfg, run.dist, run.state
    total, batch = run.schedule.total_steps, cfg.batch_samples
    display = ProgressDisplay(total_steps=total, start_step=state["step"], enabled=d.is_main, log_every=cfg.log_every, title=cfg.name)
    display.print(describe_start(run))
    for note in run.notes:
        display.print(note)
    display.print(describe_plan(run, speed_here(run)))
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
    return write_run_version(run, results)


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


def speed_here(run: Run) -> Speed | None:
    """`measured_speed` over the store's runs of this model at this sequence length on this host and
    device (the run itself included, when it resumes): an estimate of this run's speed before it starts."""
    cfg, here = run.cfg, run.dist.hardware()

    def same(folder: Path) -> bool:
        try:
            identity = read_identity(folder)
        except RenewError:  # another run's damaged record says nothing about this one's speed
            return False
        if identity is None or identity.get("device") != here or identity["config"].get("seq_len") != cfg.seq_len:
            return False
        config = identity["config"]
        if cfg.preset is not None:
            return config.get("preset") == cfg.preset
        return cfg.parent in (config.get("parent"), folder.name)

    return measured_speed(run.store, same)


def describe_plan(run: Run, speed: Speed | None) -> str:
    """Planned steps and tokens, and the time they take at a speed measured here before."""
    cfg, total = run.cfg, run.schedule.total_steps
    left = (total - run.state["step"]) * cfg.batch_tokens
    line = f"plan: {total:,} steps × {cfg.batch_tokens:,} tokens = {total * cfg.batch_tokens:,} tokens"
    if run.state["step"]:
        line += f", {left:,} to go"
    if speed is None:
        return line + "; no speed measured on this machine for this model yet"
    return line + f"; about {_duration(left / speed.tokens_per_second)} at {speed.tokens_per_second:,.0f} tok/s ({speed.source}, here)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
