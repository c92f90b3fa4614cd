"""The language-modelling loss: next-token cross-entropy over a block of token ids.

Training and every evaluation compute it here, so a held-out loss and a training loss mean the same
thing. Large logits are never held whole: at the `1b` preset's 128,256-token vocabulary, 8 × 2048 tokens
of fp32 logits are 8.4 GB, and their log-softmax and gradients as much again. Instead the model runs
with `logits_to_keep=1`, its decoder's output (the hidden states the head reads) is caught by a hook,
and the head is applied a chunk of tokens at a time: logits in the compute dtype, log-softmax in fp32
(under bf16 a 32k-way log-softmax in bf16 loses about two decimal digits of the loss), recomputed in
backward unless the whole batch fits in one chunk. Loss and gradients equal the plain formula's
(tests/model/test_loss.py, fp32, 1e-6).

A run's `z_loss` (PaLM, OLMo 2: 1e-4) adds `z_loss · mean(lse²)` over the same tokens, lse the
log-sum-exp of each token's logits; every path below computes it where it computes the cross-entropy.

On CUDA, liger-kernel's fused linear cross-entropy does the same in Triton when it is installed
(`pip install renewlm[cuda]`). Architectures whose head does something other than a linear map with
optional logit scaling (Cohere, Granite) or soft-capping (Gemma 2) fall back to the plain formula;
each model is checked once against its own last-position logits.
"""

from __future__ import annotations

import inspect
import weakref
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from renewlm.model.documents import document_inputs

# Logits per chunk, in elements: 2**24 fp32 values are 64 MiB, about 130 tokens at a 128k vocabulary;
# backward holds about three such chunks (benchmarks/loss_memory.py).
CHUNK_ELEMENTS = 2**24
# A batch of at most this many logits is one chunk, kept for backward instead of recomputed (one matmul
# with the head less): 2**27 fp32 values are 512 MiB, 4,096 tokens at a 32k vocabulary, about what a
# plain loop holds for its logits alone. The `1b` preset's 8 × 2048 tokens at 128k are 16 times more.
KEEP_ELEMENTS = 2**27


def chunk_rows(tokens: int, vocab: int) -> int:
    """Rows per chunk: all of them where their logits fit KEEP_ELEMENTS, else CHUNK_ELEMENTS' worth."""
    return tokens if tokens * vocab <= KEEP_ELEMENTS else max(1, CHUNK_ELEMENTS // vocab)


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
    """Per-token cross-entropy and log-sum-exp of `hidden @ weight.T (+ bias)`, one chunk of rows at a time.

    Forward keeps each row's log-sum-exp; backward recomputes each chunk's logits (one more matmul with
    the head) instead of storing them. Where every row is in one chunk (`rows >= n`, see `chunk_rows`),
    that chunk's logits are kept for backward instead and the head's matmul is not repeated.

    The log-sum-exp is an output with a gradient of its own (d lse / dz = softmax), so a loss on it, the
    z-loss `mean(lse²)`, trains through here too: its d/dz is 2·lse·softmax.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, scale, softcap, rows):
        n = hidden.shape[0]
        losses = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        kept = None
        for s in range(0, n, rows):
            z = _transform(F.linear(hidden[s : s + rows], weight, bias), scale, softcap)
            picked = z.gather(1, targets[s : s + rows, None]).squeeze(1)
            # One fused log-softmax (torch.logsumexp is several passes on CPU); lse = z_target - log p_target.
            log_p = torch.log_softmax(z, dim=-1).gather(1, targets[s : s + rows, None]).squeeze(1)
            losses[s : s + rows] = -log_p
            lse[s : s + rows] = picked - log_p
            if rows >= n:
                kept = z
        ctx.save_for_backward(hidden, weight, bias, targets, lse, kept)
        ctx.options = (scale, softcap, rows)
        return losses, lse

    @staticmethod
    def backward(ctx, grad_losses, grad_lse):
        hidden, weight, bias, targets, lse, kept = ctx.saved_tensors
        scale, softcap, rows = ctx.options
        grad_hidden = torch.empty_like(hidden)
        # fp32 accumulators across chunks: one matmul over all rows would round once, as these do.
        grad_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        grad_bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if bias is not None else None
        for s in range(0, hidden.shape[0], rows):
            h, up = hidden[s : s + rows], grad_losses[s : s + rows]
            z = kept if kept is not None else _transform(F.linear(h, weight, bias), scale, softcap)
            g = (z - lse[s : s + rows, None]).exp_()  # softmax
            # d loss/dz = softmax - onehot(target); d lse/dz = softmax. A z-loss-free run adds exact zeros.
            g *= (up + grad_lse[s : s + rows])[:, None]
            g[torch.arange(len(h), device=g.device), targets[s : s + rows]] -= up
            if softcap is not None:
                g *= 1.0 - (z / softcap) ** 2  # z = softcap · tanh(x / softcap): dz/dx = 1 - tanh²
            if scale is not None:
                g *= scale
            # In place into the fp32 accumulator: `g.t() @ h` would allocate a head-sized temporary.
            grad_weight.addmm_(g.t(), h.float())
            if grad_bias is not None:
                grad_bias.add_(g.sum(0))
            grad_hidden[s : s + rows] = g.to(hidden.dtype) @ weight
        grad_bias = grad_bias.to(bias.dtype) if grad_bias is not None else None
        return grad_hidden, grad_weight.to(weight.dtype), grad_bias, None, None, None, None


def chunked_cross_entropy(
    hidden: torch.Tensor, head: Head, targets: torch.Tensor, rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token fp32 cross-entropy and log-sum-exp of (n, hidden) states through `head` against (n,) targets."""
    rows = rows or chunk_rows(hidden.shape[0], head.weight.shape[0])
    return ChunkedCrossEntropy.apply(hidden, head.weight, head.bias, targets, head.scale, head.softcap, rows)


class Loss(NamedTuple):
    """A training batch's loss: the mean cross-entropy (what is logged as `loss`, so curves compare with
    and without a z-loss) and the z-loss term, `z_loss · mean(lse²)` (None when the run has none)."""

    cross_entropy: torch.Tensor
    z_loss: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        """What backward differentiates."""
        return self.cross_entropy if self.z_loss is None else self.cross_entropy + self.z_loss


def _z_term(lse: torch.Tensor | None, z_loss: float) -> torch.Tensor | None:
    # PaLM §5 and OLMo 2 (z_loss 1e-4): pulls log Z, the softmax's normaliser, towards 0 for stability.
    return z_loss * lse.square().mean() if z_loss else None


def _fused_mean(hidden: torch.Tensor, head: Head, targets: torch.Tensor, z_loss: float) -> Loss | None:
    """liger-kernel's fused linear cross-entropy (mean over tokens), where it applies: CUDA, installed, no scaling."""
    if hidden.device.type != "cuda" or head.scale is not None:
        return None
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError:
        return None
    return _liger(liger_fused_linear_cross_entropy, hidden, head, targets, z_loss)


def _liger(fused, hidden: torch.Tensor, head: Head, targets: torch.Tensor, z_loss: float) -> Loss:
    """`fused` (liger's function) called as renewlm needs it, its output read as a Loss."""
    # The head's gradient accumulates over chunks in fp32, as the chunked loss's does (liger's default
    # accumulates in the weight's dtype, bf16 under mixed precision). `lse_square_scale` is liger's z-loss:
    # the same term, z_loss · mean(lse²) of the (soft-capped) logits, added to the loss it returns.
    out = fused(hidden, head.weight, targets, head.bias, reduction="mean", softcap=head.softcap,
                accum_dtype=torch.float32, lse_square_scale=z_loss, return_z_loss=bool(z_loss))
    if not z_loss:
        return Loss(out[0] if isinstance(out, tuple) else out)
    # A (loss, z_loss) tuple in older liger-kernel releases, a CrossEntropyOutput (.loss, .z_loss) in newer ones.
    total, z = out[:2] if isinstance(out, tuple) else (out.loss, out.z_loss)
    z = z.detach()  # only `total` carries gradients (the z-loss's among them): liger's z output is for logging
    return Loss(total - z, z)


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


def _plain(model: nn.Module, tokens: torch.Tensor, extra: dict, lse: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token cross-entropy from the model's full fp32 logits, and their log-sum-exp when asked."""
    logits = model(input_ids=tokens[:, :-1], **extra).logits.flatten(0, 1).float()
    losses = F.cross_entropy(logits, tokens[:, 1:].flatten(), reduction="none")
    return losses, torch.logsumexp(logits, dim=-1) if lse else None


def _losses(model: nn.Module, tokens: torch.Tensor, mean: bool, document_eos: int | None, z_loss: float = 0.0) -> Loss:
    targets = tokens[:, 1:]
    extra = document_inputs(tokens[:, :-1], document_eos)

    def reduced(losses: torch.Tensor, lse: torch.Tensor | None) -> Loss:
        return Loss(losses.mean() if mean else losses.view(targets.shape), _z_term(lse, z_loss))

    if not _CHECKED.get(model, True) or head_of(model) is None:
        _CHECKED[model] = False
        return reduced(*_plain(model, tokens, extra, lse=bool(z_loss)))
    hidden, last_logits = _hidden(model, tokens[:, :-1], extra)
    # Read after the forward: under FSDP2 the root's parameters (head included) are gathered by
    # then, and stay gathered for backward (the root does not reshard after forward).
    head = head_of(model)
    if model not in _CHECKED:  # one host sync per model, on its first batch
        _CHECKED[model] = _agrees(head, hidden, last_logits)
        if not _CHECKED[model]:
            return _losses(model, tokens, mean, document_eos, z_loss)
    hidden, flat = hidden.flatten(0, 1), targets.flatten()
    if mean and torch.is_grad_enabled() and (fused := _fused_mean(hidden, head, flat, z_loss)) is not None:
        return fused
    return reduced(*chunked_cross_entropy(hidden, head, flat))


def token_losses(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None) -> torch.Tensor:
    """Cross-entropy of each next token of a (batch, seq_len + 1) block: a (batch, seq_len) fp32 tensor.

    With `document_eos`, each token attends only to its own document, which ends at that id (model/documents.py).
    """
    return _losses(model, tokens, False, document_eos).cross_entropy


def token_loss(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None, z_loss: float = 0.0) -> Loss:
    """Mean next-token cross-entropy over a (batch, seq_len + 1) block, computed in fp32 (`document_eos` as
    above), and the z-loss term `z_loss · mean(lse²)` over the same tokens when `z_loss` > 0."""
    return _losses(model, tokens, True, document_eos, z_loss)


def plain_token_losses(model: nn.Module, tokens: torch.Tensor, document_eos: int | None = None) -> torch.Tensor:
    """The textbook formula, full fp32 logits and all: the reference the chunked loss is tested against."""
    return _plain(model, tokens, document_inputs(tokens[:, :-1], document_eos))[0].view(tokens[:, 1:].shape)
