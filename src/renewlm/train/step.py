"""One optimizer step and what the loop calls around it: the micro-batches, the step itself, the
window of steps whose numbers are read at once, the evaluators due, and starting a checkpoint.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.distributed.fsdp import FSDPModule

from renewlm.data.stream import rank_indices
from renewlm.errors import TrainingError
from renewlm.eval.evaluator import HeldOut, evaluate_due
from renewlm.model.flops import peak_flops
from renewlm.model.loss import token_loss
from renewlm.optim.schedule import set_lr
from renewlm.train.metrics import MetricsLog, ProgressDisplay
from renewlm.train.run import Run

if TYPE_CHECKING:
    from renewlm.train.loop import StopSignal


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
    Collectives (more than one process): the all-reduce of [loss, non-finite, head norm², z-loss] below,
    and under FSDP the gradient norm's (`full_tensor`) besides FSDP's own gathers and reduce-scatters.
    """
    cfg, d, model, optimizer = run.cfg, run.dist, run.model, run.optimizer
    lr = run.schedule.lr(step)
    set_lr(optimizer, lr)
    started = time.perf_counter()
    hold_gradients = isinstance(model, FSDPModule) and cfg.grad_sync == "last_micro_batch"
    mine = rank_indices(cfg.data_offset + step * cfg.batch_samples, cfg.batch_samples, d.rank, d.world)
    loss_sum = torch.zeros((), device=d.device)
    z_sum = torch.zeros((), device=d.device)
    token_sum = 0
    for m, (block_sum, tokens) in enumerate(micro_batches(run, mine)):
        token_sum += block_sum
        if hold_gradients:  # unsharded parameters and gradients until the last micro-batch
            last = m == run.micro_steps - 1
            model.set_requires_gradient_sync(last)
            model.set_reshard_after_backward(last)
        loss = token_loss(model, tokens, run.document_eos, cfg.z_loss)
        (loss.total / run.micro_steps).backward()
        loss_sum += loss.cross_entropy.detach() / run.micro_steps
        if loss.z_loss is not None:
            z_sum += loss.z_loss.detach() / run.micro_steps
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optimizer.grad_clip or math.inf)
    if hasattr(grad_norm, "full_tensor"):  # a DTensor under FSDP: the same global norm on every process
        grad_norm = grad_norm.full_tensor()
    # [mean loss, non-finite anywhere, the head's squared norm (summed over shards), mean z-loss]: every
    # process skips the same steps.
    bad = ~torch.isfinite(loss_sum + z_sum) | ~torch.isfinite(grad_norm)
    stats = torch.stack([loss_sum / d.world, bad.float(), head_square(model), z_sum / d.world])
    if d.distributed:
        torch.distributed.all_reduce(stats)
    optimizer.found_inf = (stats[1] > 0).float()
    optimizer.step()
    for average in run.averages.values():  # after the step, with its verdict: a skipped step leaves each as it was
        average.update(step, optimizer.found_inf)
    optimizer.zero_grad(set_to_none=True)
    pending.add(step, lr, stats, grad_norm.detach(), token_sum, time.perf_counter() - started)


def head_square(model: nn.Module) -> torch.Tensor:
    """The squared norm of this process's part of the output projection's weight (lm_head; the input
    embedding where tied), summed over processes by the step's all-reduce: its square root is logged as
    `head_norm`, the norm Marin watched when it tried the z-loss (its report "ZLoss vs Not 1.4B")."""
    head = model.get_output_embeddings()
    if head is None:  # a model with no output projection of its own: nothing to watch
        return torch.zeros((), device=next(model.parameters()).device)
    weight = head.weight.detach()
    local = weight.to_local() if hasattr(weight, "to_local") else weight  # a DTensor shard under FSDP
    return torch.linalg.vector_norm(local, dtype=torch.float32).square()


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
        """Read, log and check the window; True when any process was asked to stop (all stop together).

        `stop` is read once the window's steps have finished: a signal that came during them counts now.
        """
        run, d, state = self.run, self.run.dist, self.run.state
        waited = time.perf_counter()
        values = torch.stack(self.values).tolist() if self.values else []  # the one host sync: waits for the steps
        *token_sums, stop_votes = d.sum([float(t) for _, _, t in self.steps] + [float(stop.requested)])
        self.seconds += time.perf_counter() - waited
        seconds = self.seconds / max(1, len(self.steps))  # the device's time per step, averaged over the window
        batch_tokens = run.cfg.batch_samples * run.cfg.seq_len
        last, memory = (self.steps[-1][0] if self.steps else 0), _peak_memory_gib(d.device)
        for (step, lr, _), (loss, bad, head, z, norm), token_sum in zip(self.steps, values, token_sums):
            if bad:
                state["bad_steps"] += 1
                state["skipped_steps"] += 1
            else:
                state["bad_steps"] = 0
            state["seconds"] += seconds
            record = {
                "step": step + 1, "tokens": state["tokens"] - batch_tokens * (last - step),
                "lr": lr, "loss": loss, "grad_norm": norm, "head_norm": math.sqrt(head),
                "tokens_per_second": batch_tokens / seconds, "seconds": seconds,
                "skipped_steps": state["skipped_steps"], "batch_token_sum": int(token_sum),
            }
            if run.cfg.z_loss:
                record["z_loss"] = z
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


def save_checkpoint(run: Run) -> None:
    """Start writing a checkpoint of the run as it is now (the data counter says where the stream goes on)."""
    cfg, state = run.cfg, run.state
    run.checkpointer.save(
        run.model, run.optimizer, dict(state, next_sample=cfg.data_offset + state["step"] * cfg.batch_samples), averages=run.averages,
    )
