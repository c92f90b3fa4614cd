"""Checkpoints that resume a run exactly, with torch.distributed.checkpoint (DCP), verified before use.

A checkpoint holds the model and optimizer, and a run's weight averages (DCP files, sharded per process and loadable at another
world size), `train.json` (step, tokens, the data counter, the guard counters), every process's RNG
states in `rng.safetensors`, and `manifest.json`, the sha256 of each of those files. Every process
writes into one temporary folder, on a thread while training goes on (DCP's `async_save`, from a copy
in host memory); the main process adds its files and the manifest last and renames
the folder to `step-NNNNNNNN`. A checkpoint is complete when its manifest is there, and it is loaded
only once its files match it: a corrupt newest checkpoint falls back to the one before.

Nothing in a checkpoint is unpickled freely: DCP's files are read through checkpoint_reader.py, and
the RNG states are plain uint8 tensors in safetensors. So a file planted in a run folder cannot run
code even if its manifest was rewritten to match it.
"""

from __future__ import annotations

import errno
import json
import shutil
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file, save_file
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from renewlm.distributed import Dist
from renewlm.errors import CorruptError, TrainingError
from renewlm.manifest import MANIFEST, verify_in_background, verify_manifest, write_manifest
from renewlm.store import replace_dir
from renewlm.train.checkpoint_reader import Refused, SafePlanner, SafeReader, read_metadata

_PREFIX = "step-"
RNG_FILE = "rng.safetensors"
TRAIN_FILE = "train.json"
# DCP works in one process without a process group, and says so on every save and load.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")


def _unwrap(e: BaseException) -> BaseException:
    """DCP wraps each process's exception in a CheckpointException: the first one."""
    if isinstance(e, CheckpointException) and e.failures:
        return next(iter(e.failures.values()))[0]
    return e


def _reason(e: BaseException) -> str:
    """One line for a failed save or load."""
    e = _unwrap(e)
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _raise_if_interrupted(e: BaseException) -> None:
    """DCP wraps a Ctrl-C (or SIGTERM, which the CLI turns into one) like any failure: unwrap it."""
    if isinstance(e, CheckpointException) and any(isinstance(x, KeyboardInterrupt) for x, _ in e.failures.values()):
        raise KeyboardInterrupt from None


def _no_space(e: BaseException) -> bool:
    if isinstance(e, CheckpointException):
        return any(_no_space(exc) for exc, _ in e.failures.values())
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


def _dcp_load(state: dict, folder: Path, what: str, fix: str) -> None:
    try:
        metadata = read_metadata(folder)
    except Refused as e:
        raise CorruptError(f"{what} was refused: {e} (planted or altered); remove it") from None
    except OSError as e:
        raise CorruptError(f"{what} cannot be read ({_reason(e)}); remove it") from None
    try:
        dcp.load(state, storage_reader=SafeReader(folder, metadata), planner=SafePlanner())
    except (Exception, CheckpointException) as e:  # CheckpointException is a BaseException
        _raise_if_interrupted(e)
        if isinstance(_unwrap(e), Refused):
            raise CorruptError(f"{what} was refused: {_unwrap(e)} (planted or altered); remove it") from None
        raise TrainingError(f"{what} cannot be loaded into this run's model or optimizer ({_reason(e)}); {fix}") from None


def _collective_message(d: Dist | None, message: str | None) -> str | None:
    """The first non-empty message of any process, on every process (a failure anywhere stops all)."""
    if d is not None:
        return d.first_message(message)
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return message
    messages: list = [None] * dist.get_world_size()
    dist.all_gather_object(messages, message)
    return next((m for m in messages if m), None)


def _is_main(d: Dist | None) -> bool:
    if d is not None:
        return d.is_main
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _verify_on_main(d: Dist | None, folder: Path, what: str) -> None:
    """Hash on one process (every process hashing one shared file system is N times the reads), tell all."""
    message = None
    if _is_main(d):
        try:
            verify_manifest(folder, what)
        except CorruptError as e:
            message = str(e)
    message = _collective_message(d, message)
    if message:
        raise CorruptError(message)


def _rng_tensors(states: list[dict]) -> dict[str, torch.Tensor]:
    return {f"{device}.{rank}": t.contiguous() for rank, s in enumerate(states) for device, t in s.items()}


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


class PendingResume:
    """The newest checkpoint that verifies, being found on a thread; `.result()` on every process."""

    def __init__(self, checkpointer: Checkpointer):
        self._checkpointer = checkpointer
        self._candidates = list(reversed(checkpointer.candidates())) if checkpointer.dist.is_main else []
        self._future = verify_in_background(self._candidates[0], self._what(self._candidates[0])) if self._candidates else None

    def _what(self, path: Path) -> str:
        return f"checkpoint {path}"

    def _search(self) -> tuple[str | None, list[str], str | None]:
        notes: list[str] = []
        for i, path in enumerate(self._candidates):
            try:
                if i == 0:
                    self._future.result()
                else:
                    verify_manifest(path, self._what(path))
            except CorruptError as e:
                notes.append(f"{e}")
                continue
            if notes:
                notes.append(f"resuming from the previous complete checkpoint, {path.name}, instead")
            return path.name, notes, None
        if notes:
            error = (
                f"no checkpoint of {self._checkpointer.folder} can be trusted ({len(notes)} refused; the newest: "
                f"{notes[0]}); rerun with --fresh to start over"
            )
            return None, [], error
        return None, [], None

    def result(self) -> tuple[Path | None, list[str]]:
        d = self._checkpointer.dist
        found = list(self._search()) if d.is_main else [None, [], None]
        if d.distributed:
            dist.broadcast_object_list(found, src=0)
        name, notes, error = found
        if error:
            raise CorruptError(error)
        return (self._checkpointer.folder / name if name else None), notes


_ABANDON_WAIT_SECONDS = 300  # a write that needs a process that died never finishes


@dataclass
class _Save:
    """A checkpoint being written: DCP's future, its folders, and what the main process adds last."""

    future: Future
    tmp: Path
    final: Path
    rng: list
    train_state: dict


class Checkpointer:
    def __init__(self, folder: Path, dist_: Dist, keep: int):
        self.folder = Path(folder)
        self.dist = dist_
        self.keep = keep
        self._pending: _Save | None = None
        self._save_group = None

    def candidates(self) -> list[Path]:
        """Every `step-N` folder, oldest first, whether or not it verifies."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob(f"{_PREFIX}*") if p.is_dir() and p.name[len(_PREFIX) :].isdigit()]
        return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))

    def complete(self) -> list[Path]:
        """Checkpoints whose writing finished (they have a manifest), oldest first; not yet verified."""
        return [p for p in self.candidates() if (p / MANIFEST).is_file()]

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def resume_point(self) -> tuple[Path | None, list[str]]:
        """The newest checkpoint that verifies, and one sentence per newer one refused (print them).

        (None, []) when there is none; CorruptError when there are checkpoints and none verifies.
        A collective under torchrun: the main process hashes, every process gets its answer.
        """
        return PendingResume(self).result()

    def resume_point_in_background(self) -> PendingResume:
        """Start hashing the newest checkpoint now (build the model meanwhile); `.result()` as resume_point."""
        return PendingResume(self)

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_state: dict, averages=None) -> Path:
        """Start writing checkpoint `step-N` and return its path; training goes on while it is written.

        The model and optimizer state are copied to host memory now (DCP's `async_save`) and written
        on a thread; `wait` (called by the next save, at the end, and before a stop) adds the RNG
        states, train.json and the manifest and gives the folder its name. A failure is raised on
        every process as TrainingError with nothing of the checkpoint left (earlier ones intact).
        """
        self.wait()  # one checkpoint in flight at a time
        d = self.dist
        step = int(train_state["step"])
        final = self.folder / f"{_PREFIX}{step:08d}"
        tmp = self.folder / f".tmp-{_PREFIX}{step:08d}"
        if d.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            for stale in self.folder.glob(".tmp-*"):  # left by a killed save; the run lock makes us its only writer
                shutil.rmtree(stale, ignore_errors=True)
        d.barrier()
        failure, future = None, None
        try:
            model_sd, optim_sd = get_state_dict(model, optimizer)
            state = {"model": model_sd, "optim": optim_sd, **{k: a.state_dict() for k, a in (averages or {}).items()}}
            future = dcp.async_save(state, checkpoint_id=str(tmp), process_group=self._group())
        except (Exception, CheckpointException) as e:
            _raise_if_interrupted(e)
            failure = e
        self._stop_if_failed(failure, final, tmp)
        rng = [_rng_state()]  # this step's, not the step the write finishes at
        if d.distributed:
            rng = [None] * d.world
            dist.all_gather_object(rng, _rng_state())
        self._pending = _Save(future, tmp, final, rng, dict(train_state))
        return final

    def wait(self) -> Path | None:
        """Finish the checkpoint being written, if any (a collective): its path, or TrainingError."""
        p, self._pending = self._pending, None
        if p is None:
            return None
        failure = None
        try:
            p.future.result()
        except (Exception, CheckpointException) as e:
            _raise_if_interrupted(e)
            failure = e
        self._stop_if_failed(failure, p.final, p.tmp)
        if self.dist.is_main:
            try:
                self._complete(p)
            except Exception as e:
                failure = e
        self._stop_if_failed(failure, p.final, p.tmp)
        self.dist.barrier()
        return p.final

    def abandon(self) -> None:
        """On the way out of a failed or interrupted run: no collectives; the main process completes a
        checkpoint whose write finished (its future succeeding means every process's files are in)."""
        p, self._pending = self._pending, None
        if p is None or not self.dist.is_main:
            return
        try:
            p.future.result(timeout=_ABANDON_WAIT_SECONDS)
            self._complete(p)
        except (Exception, CheckpointException):
            shutil.rmtree(p.tmp, ignore_errors=True)  # the next save would clean it; a stop leaves none behind

    def _complete(self, p: _Save) -> None:
        save_file(_rng_tensors(p.rng), str(p.tmp / RNG_FILE), metadata={"world": str(self.dist.world)})
        (p.tmp / TRAIN_FILE).write_text(json.dumps(p.train_state, indent=2) + "\n")
        write_manifest(p.tmp)
        replace_dir(p.tmp, p.final)
        for old in self.complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    def _group(self):
        """A gloo group for the writing thread's collectives: never the one training's run on (they
        would interleave), and CPU-capable as async_save requires. None in one plain process."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        if self._save_group is None:
            self._save_group = dist.new_group(backend="gloo")
        return self._save_group

    def _stop_if_failed(self, failure: BaseException | None, final: Path, tmp: Path) -> None:
        message = None
        if failure is not None:
            fix = "free disk space" if _no_space(failure) else "fix the cause"
            message = (
                f"could not write checkpoint {final.name} in {self.folder} ({_reason(failure)}); nothing of it was "
                f"kept and earlier checkpoints are intact; {fix} and run the same command again to resume"
            )
        message = _collective_message(self.dist, message)
        if message:
            if self.dist.is_main:
                shutil.rmtree(tmp, ignore_errors=True)
            raise TrainingError(message)

    def load(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, *, verified: bool = False, averages=None) -> dict:
        """Restore model, optimizer, RNG (and the run's weight averages, in place) from `path` and return its train state.

        The manifest is verified first unless `verified` (a path from `resume_point`).
        """
        path = Path(path)
        what = f"checkpoint {path}"
        if not verified:
            _verify_on_main(self.dist, path, what)
        try:
            train_state = json.loads((path / TRAIN_FILE).read_text())
            rng = load_file(str(path / RNG_FILE))
        except Exception as e:  # verified files that still do not parse: written by something else
            raise CorruptError(f"{what} holds an unreadable {TRAIN_FILE} or {RNG_FILE} ({_reason(e)}); remove it") from None
        if not isinstance(train_state, dict) or type(train_state.get("step")) is not int:
            raise CorruptError(f"{what} has a {TRAIN_FILE} without a step count; remove it")
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd, **{k: a.state_dict() for k, a in (averages or {}).items()}}
        _dcp_load(state, path, what, "rerun with --fresh to start over")
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        rank = self.dist.rank
        if f"cpu.{rank}" in rng:  # a process the checkpoint did not have (a larger world) keeps its seed
            torch.set_rng_state(rng[f"cpu.{rank}"])
            if f"cuda.{rank}" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng[f"cuda.{rank}"])
        return train_state
