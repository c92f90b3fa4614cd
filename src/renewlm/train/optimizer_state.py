"""A trunk version's optimizer state, on its own, for a branch to continue from (DCP files and a manifest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict

from renewlm.errors import TrainingError
from renewlm.manifest import write_manifest
from renewlm.store import replace_dir
from renewlm.train.checkpoint import _collective_message, _dcp_load, _is_main, _raise_if_interrupted, _reason, _verify_on_main


def save_optimizer(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """The optimizer state alone (a trunk version's), with its manifest, for a branch to continue from.

    A collective: every process writes its shard. Written to a temporary folder and renamed into place,
    so a rerun after a kill never mixes in files of an earlier attempt.
    """
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}")
    main = _is_main(None)
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    message = None
    try:
        dcp.save({"optim": get_optimizer_state_dict(model, optimizer)}, checkpoint_id=str(tmp))
    except (Exception, CheckpointException) as e:
        _raise_if_interrupted(e)
        message = _reason(e)
    if main and message is None:
        try:
            write_manifest(tmp)
            replace_dir(tmp, folder)
        except Exception as e:
            message = _reason(e)
    message = _collective_message(None, message)
    if message:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise TrainingError(f"could not write the optimizer state to {folder} ({message}); free disk space or fix the cause, then rerun")


def load_optimizer(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, *, verified: bool = False) -> None:
    """Load a trunk version's optimizer state, after checking its manifest unless `verified`.

    Each parameter's moments and step count come from the trunk; the parameter groups (their weight decay,
    betas, `lr_scale`) are this run's, so a branch may group its parameters otherwise than its trunk did
    (`embedding_lr_scale` gives the embeddings a group of their own)."""
    folder = Path(folder)
    if not verified:
        _verify_on_main(None, folder, f"the optimizer state in {folder}")
    own = get_optimizer_state_dict(model, optimizer)
    state = {"optim": {"state": own["state"]}}  # the trunk's groups are not read
    _dcp_load(
        state, folder, f"the optimizer state in {folder}",
        "branch from a trunk version of the same architecture, or set load_optimizer: false",
    )
    set_optimizer_state_dict(model, optimizer, optim_state_dict={"state": state["optim"]["state"], "param_groups": own["param_groups"]})
