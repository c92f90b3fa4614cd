"""The language-modelling loss: next-token cross-entropy over a block of token ids.

Training and every evaluation compute it here, so a held-out loss and a training loss mean the same
thing. The full logits are never held: at the `1b` preset's 128,256-token vocabulary, 8 × 2048 tokens
of fp32 logits are 8.4 GB, and their log-softmax and gradients as much again. Instead the model runs
with `logits_to_keep=1`, its decoder's output (the hidden states the head reads) is caught by a hook,
and the head is applied a chunk of tokens at a time: logits in the compute dtype, log-softmax in fp32
(under bf16 a 32k-way log-softmax in bf16 loses about two decimal digits of the loss), recomputed in
backward. Loss and gradients equal the plain formula's (tests/model/test_loss.py, fp32, 1e-6).

On CUDA, liger-kernel's fused linear cross-entropy does the same in Triton when it is installed
(`pip install renewlm[cuda]`). Architectures whose head does something other than a linear map with
optional logit scaling (Cohere, Granite) or soft-capping (Gemma 2) fall back to the plain formula;
each model is checked once against its own last-position logits.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from renewlm.model.documents import document_inputs

# Logits per chunk, in elements: 2**24 fp32 values are 64 MiB, about 130 tokens at a 128k vocabulary;
# backward holds about three such chunks (benchmarks/loss_memory.py).
CHUNK_ELEMENTS = 2**24


@dataclass(frozen=True)
class Head:
    """The output projection and what the architecture does to its logits."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    scale: float | None = None  # logits × scale (Cohere's logit_scale; Granite's 1 / logits_scaling)
    softcap: float | None = None  # softcap · tanh(logits / softcap) (Gemma 2)


def _transform(raw: torch.Tensor, scale: float | None, softcap: float | None) -> torch.Tensor:
    z = raw.float()
    if scale is not None:
        z = z * scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    return z


class ChunkedCrossEntropy(torch.autograd.Function):
    """Per-token cross-entropy of `hidden @ weight.T (+ bias)`, one chunk of rows at a time.

    Forward keeps only each row's log-sum-exp; backward recomputes each chunk's logits (one more
    matmul with the head) instead of storing them.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, scale, softcap, rows):
        n = hidden.shape[0]
        losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        for s in range(0, n, rows):
            z = _transform(F.linear(hidden[s : s + rows], weight, bias), scale, softcap)
            lse[s : s + rows] = torch.logsumexp(z, dim=-1)
            losses[s : s + rows] = lse[s : s + rows] - z.gather(1, targets[s : s + rows, None]).squeeze(1)
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.options = (scale, softcap, rows)
        return losses

    @staticmethod
    def backward(ctx, grad_losses):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        scale, softcap, rows = ctx.options
        grad_hidden = torch.empty_like(hidden)
        # fp32 accumulators across chunks: one matmul over all rows would round once, as these do.
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if bias is not None else None
        for s in range(0, hidden.shape[0], rows):
            h = hidden[s : s + rows]
            raw = F.linear(h, weight, bias).float()
            scaled = raw * scale if scale is not None else raw
            z = softcap * torch.tanh(scaled / softcap) if softcap is not None else scaled
            g = torch.exp(z - lse[s : s + rows, None])  # softmax
            g[torch.arange(len(h), device=g.device), targets[s : s + rows]] -= 1.0
            g *= grad_losses[s : s + rows, None]
            if softcap is not None:
                g *= 1.0 - torch.tanh(scaled / softcap) ** 2
            if scale is not None:
                g *= scale
            # In place into the fp32 accumulator: `g.t() @ h` would allocate a head-sized temporary.
            grad_weight.addmm_(g.t(), h.float())
            if grad_bias is not None:
                grad_bias.add_(g.sum(0))
            grad_hidden[s : s + rows] = g.to(hidden.dtype) @ weight
        grad_bias = grad_bias.to(bias.dtype) if grad_bias is not None else None
        return grad_hidden, grad_weight.to(weight.dtype), grad_bias, None, None, None, None


def chunked_cross_entropy(hidden: torch.Tensor, head: Head, targets: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    """Per-token fp32 cross-entropy of (n, hidden) states through `head` against (n,) targets."""
    rows = rows or max(1, CHUNK_ELEMENTS // head.weight.shape[0])
    return ChunkedCrossEntropy.apply(hidden, head.weight, head.bias, targets, head.scale, head.softcap, rows)


def _fused_mean(hidden: torch.Tensor, head: Head, targets: torch.Tensor) -> torch.Tensor | None:
    """liger-kernel's fused linear cross-entropy (mean over tokens), where it applies: CUDA, installed, no scaling."""
    if hidden.device.type != "cuda" or head.scale is not None:
        return None
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    # The head's gradient accumulates over chunks in fp32, as the chunked loss's does (liger's default
    # accumulates in the weight's dtype, bf16 under mixed precision).
    out = liger_fused_linear_cross_entropy(hidden, head.weight, targets, head.bias, reduction="mean", softcap=head.softcap,
                                           accum_dtype=torch.float32)
    return out[0] if isinstance(out, tuple) else out


# Per model: its Head-building recipe once it passed the check, or None for the plain formula.
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def head_of(model: nn.Module) -> Head | None:
    """The model's output projection with its logit transform, or None where it has no plain linear head."""
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return None
    get_decoder = getattr(model, "get_decoder", None)
    linear = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if get_decoder is None or not isinstance(linear, nn.Linear):
        return None
    config = getattr(model, "config", None)
    scale = getattr(config, "logit_scale", None)
    if getattr(config, "logits_scaling", None):
        scale = 1.0 / config.logits_scaling
    softcap = getattr(config, "final_logit_softcapping", None)
    return Head(linear.weight, linear.bias, float(scale) if scale else None, float(softcap) if softcap else None)


def _hidden(model: nn.Module, inputs: torch.Tensor, extra: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's last hidden states for every position, and the model's own last-position logits."""
    caught = []
    handle = model.get_decoder().register_forward_hook(lambda module, args, output: caught.append(output[0]))
    try:
        logits = model(input_ids=inputs, logits_to_keep=1, **extra).logits
    finally:
        handle.remove()
    return caught[-1], logits[:, -1]


def _agrees(head: Head, hidden: torch.Tensor, last_logits: torch.Tensor) -> bool:
    """Whether `head` on the caught hidden states gives the model's own logits (at the last position)."""
    with torch.no_grad():
        mine = _transform(F.linear(hidden[:, -1], head.weight, head.bias), head.scale, head.softcap)
        theirs = last_logits.float()
        tolerance = 1e-4 if hidden.dtype == torch.float32 else 3e-2
        return bool((mine - theirs).abs().max() <= tolerance * theirs.abs().max().clamp_min(1.0))


def _plain(model: nn.Module, tokens: torch.Tensor, extra: dict) -> torch.Tensor:
    logits = model(input_ids=tokens[:, :-1], **extra).logits
    return F.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none")


def _losses(model: nn.Module, tokens: torch.Tensor, mean: bool, document_eos: int | None) -> torch.Tensor:
    targets = tokens[:, 1:]
    extra = document_inputs(tokens[:, :-1], document_eos)
    if not _CHECKED.get(model, True) or head_of(model) is None:
        _CHECKED[model] = False
        losses = _plain(model, tokens, extra)
        return losses.mean() if mean else losses.view(targets.shape)
    hidden, last_logits = _hidden(model, tokens[:, :-1], extra)
    # Read after the forward: under FSDP2 the root's parameters (head included) are gathered by
    # then, and stay gathered for backward (the root does not reshard after forward).
    head = head_of(model)
    if model not in _CHECKED:  # one host sync per model, on its first batch
        _CHECKED[model] = _agrees(head, hidden, last_logits)
        if not _CHECKED[model]:
            return _losses(model, tokens, mean, document_eos)
    hidden, flat = hidden.flatten(0, 1), targets.flatten()
    if mean and torch.is_grad_enabled() and (fused := _fused_mean(hidden, head, flat)) is not None:
        return fused
    losses = chunked_cross_entropy(hidden, head, flat)
    return losses.mean() if mean else losses.view(targets.shape)


def token_losses(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None) -> torch.Tensor:
    """Cross-entropy of each next token of a (batch, seq_len + 1) block: a (batch, seq_len) fp32 tensor.

    With `document_eos`, each token attends only to its own document, which ends at that id (model/documents.py).
    """
    return _losses(model, tokens, False, document_eos)


def token_loss(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over a (batch, seq_len + 1) block, computed in fp32 (`document_eos` as above)."""
    return _losses(model, tokens, True, document_eos)


def plain_token_losses(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None) -> torch.Tensor:
    """The textbook formula, full fp32 logits and all: the reference the chunked loss is tested against."""
    return _plain(model, tokens, document_inputs(tokens[:, :-1], document_eos)).view(tokens[:, 1:].shape)
