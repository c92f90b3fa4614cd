"""Checkpoints that resume a run exactly, with torch.distributed.checkpoint (DCP).

A checkpoint holds the model, the optimizer, and `train.json` (step, tokens, the data counter, the
guard counters) plus every process's RNG states. DCP files are sharded per process and can be
loaded at another world size. Every process writes into one temporary folder; the main process adds
`train.json` last and renames the folder to `step-NNNNNNNN`, so a folder with that name is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    get_optimizer_state_dict,
    get_state_dict,
    set_optimizer_state_dict,
    set_state_dict,
)

from renewlm.errors import TrainingError
from renewlm.train.distributed import Dist

_PREFIX = "step-"
# DCP works in one process without a process group, and says so on every save and load.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")


def _rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


class Checkpointer:
    def __init__(self, folder: Path, dist_: Dist, keep: int):
        self.folder = Path(folder)
        self.dist = dist_
        self.keep = keep

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.glob(f"{_PREFIX}*") if (p / "train.json").is_file()]
        return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, train_state: dict) -> Path:
        step = int(train_state["step"])
        final = self.folder / f"{_PREFIX}{step:08d}"
        tmp = self.folder / f".tmp-{_PREFIX}{step:08d}"
        if self.dist.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        self.dist.barrier()
        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp))
        rng = [_rng_state()]
        if self.dist.distributed:
            rng = [None] * self.dist.world
            dist.all_gather_object(rng, _rng_state())
        if self.dist.is_main:
            torch.save(rng, tmp / "rng.pt")
            (tmp / "train.json").write_text(json.dumps(train_state, indent=2) + "\n")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            for old in self.complete()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        self.dist.barrier()
        return final

    def load(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        """Restore model, optimizer and RNG from `path`; return its train state."""
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        try:
            dcp.load(state, checkpoint_id=str(path))
        except Exception as e:  # DCP raises many kinds; any of them means this checkpoint does not fit
            raise TrainingError(
                f"checkpoint {path} does not fit this run's model or optimizer ({type(e).__name__}: {e}); "
                f"rerun with --fresh to start over"
            ) from None
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        rng = torch.load(path / "rng.pt", weights_only=False)
        if self.dist.rank < len(rng):
            _set_rng_state(rng[self.dist.rank])
        return json.loads((path / "train.json").read_text())


def save_optimizer(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The optimizer state alone (a trunk version's), for a branch to continue from."""
    dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(folder))


def load_optimizer(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    state = {"optim": get_optimizer_state_dict(model, optimizer)}
    try:
        dcp.load(state, checkpoint_id=str(folder))
    except Exception as e:
        raise TrainingError(
            f"the optimizer state in {folder} does not fit this model ({type(e).__name__}: {e}); "
            f"branch from a trunk version of the same architecture, or set load_optimizer: false"
        ) from None
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state["optim"])
