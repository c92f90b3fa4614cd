"""Parameter counts, training FLOPs per token, and accelerator peaks for MFU."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: `plan` prices a preset without it
    import torch
    from torch import nn

# Dense bf16 peaks from NVIDIA's datasheets (FLOP/s), by the exact name torch.cuda.get_device_name gives:
# the H100 PCIe and NVL parts are slower than the SXM one of the same family, so no prefix match.
# MFU is reported only where the peak is known; a run's `peak_tflops` gives it for any other device.
PEAKS = {
    "NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100 PCIe": 756e12, "NVIDIA H100 NVL": 835e12,
    "NVIDIA H200": 989e12, "NVIDIA GH200 480GB": 989e12,
    "NVIDIA A100-SXM4-80GB": 312e12, "NVIDIA A100-SXM4-40GB": 312e12, "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12, "NVIDIA L40S": 362e12,
}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total parameters (tied weights once) and those outside the input embedding."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"total": total, "non_embedding": total - embedding}


def _get(config, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise ValueError(f"config has none of {names}")


def flops_per_token(config, seq_len: int, blocks: int | None = None) -> float:
    """Training FLOPs per token: 6N + 12·L·d·T (Kaplan et al. 2020; PaLM's MFU), N without the input
    embedding (the LM head's matmul counts, tied or not: it is computed either way).

    `blocks`: the parameters outside both embeddings, counted on a model already built
    (`block_parameters`); without it they are counted on a meta-device model built from `config`.
    """
    d = _get(config, "hidden_size", "n_embd", "d_model")
    layers = _get(config, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _get(config, "vocab_size")
    blocks = blocks if blocks is not None else non_embedding_parameters(config)
    return training_flops(blocks, vocab=vocab, hidden=d, layers=layers, seq_len=seq_len)


def training_flops(blocks: int, *, vocab: int, hidden: int, layers: int, seq_len: int) -> float:
    """6N + 12·L·d·T per token, N = the blocks' parameters + the LM head's (vocab × hidden)."""
    return 6.0 * (blocks + vocab * hidden) + 12.0 * layers * hidden * seq_len


def block_parameters(model: nn.Module) -> int:
    """Parameters outside the input and output embeddings (global counts, sharded or not, meta or not)."""
    counts = parameter_counts(model)
    head = model.get_output_embeddings()
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        counts["non_embedding"] -= head.weight.numel()
    return counts["non_embedding"]


def non_embedding_parameters(config) -> int:
    """Parameters of the transformer blocks, from the config (attention, MLP, norms), on a meta-device
    model (for callers without a model; a run counts its own with `block_parameters`)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return block_parameters(model)


def peak_flops(device: torch.device, peak_tflops: float | None = None) -> float | None:
    """The device's dense bf16 peak in FLOP/s: `peak_tflops` when given, else the table's, else None."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    if device.type != "cuda":
        return None
    import torch

    return PEAKS.get(torch.cuda.get_device_name(device))
