"""The model on its devices: activation checkpointing → compile → shard → load.

Start-up scales with the model, not with the number of processes. The main process alone reads the
weights (or draws a seeded initialisation, the same at any world size because it is drawn once);
every process builds the model on the meta device (no memory), shards it with FSDP2's `fully_shard`,
allocates only its shard (`to_empty`), and receives that shard from the main process
(`set_model_state_dict(..., full_state_dict=True, broadcast_from_rank0=True)`). So 8 processes of an
8B model hold one full fp32 copy on the host (the main process's), not eight.

One precision recipe (torchtitan's): bf16 is FSDP2's MixedPrecisionPolicy (bf16 compute, fp32 master
weights and gradient reduction), never autocast, and a bf16 run is sharded even in one process, so
one process and N compute alike and a run resumed at another world size keeps its precision.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from renewlm.errors import RenewError
from renewlm.model.load import ModelSource, check_tokenizer, load_model
from renewlm.model.resize import grow_vocabulary


@dataclass(frozen=True)
class Placement:
    """How a run's model is placed: on which device, sharded or not, in which precision, compiled or not."""

    device: torch.device
    shard: bool  # FSDP2, required for more than one process, on CUDA, and for bf16
    bf16: bool
    compile: bool
    activation_checkpointing: bool


def placement(device: torch.device, world: int, precision: str, compile_: bool | None, activation_checkpointing: bool) -> Placement:
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    compile_ = compile_ if compile_ is not None else device.type == "cuda"
    return Placement(device, world > 1 or device.type == "cuda" or bf16, bf16, compile_, activation_checkpointing)


def ensure_process_group(device: torch.device) -> None:
    """FSDP2 needs a process group even in one process: a one-process group when torchrun made none."""
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks, found from the classes the model names in `_no_split_modules` (what
    transformers itself keeps whole when it splits a model), else the one ModuleList of equal blocks."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    found = [m for m in model.modules() if type(m).__name__ in names]
    if found:
        return found
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            first = type(module[0])
            if all(type(m) is first for m in module) and sum(p.numel() for p in module.parameters()) > 0:
                return list(module)
    return []


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each decoder layer in backward (transformers' own switch; non-reentrant checkpoints)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers ≥ 5 (gradient_checkpointing_enable is its deprecated alias)
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def compile_layers(model: nn.Module, *, sharded: bool) -> None:
    """torch.compile each decoder layer (one graph, reused by every layer of the same shape), in one
    process as under FSDP. `fullgraph` where transformers says the model compiles whole and no FSDP
    hooks run inside the layer's call."""
    fullgraph = bool(getattr(model, "_can_compile_fullgraph", False)) and not sharded
    for layer in decoder_layers(model):
        layer.compile(fullgraph=fullgraph)


def shard(model: nn.Module, bf16: bool) -> None:
    """FSDP2: each decoder layer, then the rest (embeddings, final norm, head)."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else MixedPrecisionPolicy()
    layers = decoder_layers(model)
    for i, layer in enumerate(layers):
        # The last layer's parameters are needed again at once by backward: keep them gathered.
        fully_shard(layer, mp_policy=policy, reshard_after_forward=i < len(layers) - 1)
    fully_shard(model, mp_policy=policy)


@contextlib.contextmanager
def unwrapped(model: nn.Module):
    """The model seen as its own class, not FSDP2's `FSDPLlamaForCausalLM` subclass (what save_pretrained
    writes into config.json and what a version records)."""
    from torch.distributed.fsdp import FSDPModule

    cls = type(model)
    if not isinstance(model, FSDPModule):
        yield model
        return
    model.__class__ = next(b for b in cls.__bases__ if b is not FSDPModule)
    try:
        yield model
    finally:
        model.__class__ = cls


def tied_head_key(model: nn.Module) -> str | None:
    """The state-dict key of a head that shares the input embedding's weight, or None."""
    head = model.get_output_embeddings()
    if head is None or head.weight is not model.get_input_embeddings().weight:
        return None
    return next(f"{name}.weight" for name, module in model.named_modules() if module is head)


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _share(payload: list) -> list:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.broadcast_object_list(payload, src=0)
    return payload


def build_model(
    source: ModelSource,
    where: Placement,
    *,
    tokenizer,
    trust_remote_code: bool,
    max_position_embeddings: int,
    random_init: bool,
    grow_from: int | None = None,
) -> tuple[nn.Module, dict]:
    """The run's model on its device, ready to train, and what was loaded (as `load_model`'s info).

    Seed the RNG before calling: presets and `random_init` draw their weights on the main process.
    `grow_from`: the ids of the tokenizer the model was trained with, which `tokenizer` extends; the
    embeddings grow to `len(tokenizer)` rows (model/resize.py) before the model is placed.
    """
    full, info, error = None, None, None
    if _rank() == 0:
        try:
            full, info = load_model(
                source, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
                max_position_embeddings=max_position_embeddings, verified=True, random_init=random_init,
            )
            if grow_from is not None:
                grow_vocabulary(full, len(tokenizer), grow_from)
                info["vocabulary"] = {"old_ids": grow_from, "ids": len(tokenizer)}
            check_tokenizer(full, tokenizer)
        except RenewError as e:
            error = e
    if not where.shard:  # one process in fp32: the loaded model itself
        if error is not None:
            raise error
        model = full.to(where.device)
        _prepare(model, where)
        return model, info
    ensure_process_group(where.device)
    error, info, config = _share([error, info, full.config if full is not None else None])
    if error is not None:
        raise error
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    _prepare(model, where)
    model.to_empty(device=where.device)
    _load_from_main(model, full)
    del full
    return model, info


def _prepare(model: nn.Module, where: Placement) -> None:
    model.train()
    if hasattr(model, "config"):
        model.config.use_cache = False
    if where.activation_checkpointing:
        enable_activation_checkpointing(model)
    if where.compile:
        compile_layers(model, sharded=where.shard)
    if where.shard:
        shard(model, where.bf16)


def _load_from_main(model: nn.Module, full: nn.Module | None) -> None:
    """Every process's shard of the main process's weights; buffers (rotary frequencies, which
    `to_empty` left uninitialised and no state dict holds) broadcast as they are."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    state = full.state_dict() if full is not None else {}
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    sources = dict(full.named_buffers()) if full is not None else {}
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if full is not None:
                buffer.copy_(sources[name])
            if dist.get_world_size() > 1:
                dist.broadcast(buffer, src=0)
