"""Documents in a packed block of tokens, each attending only to itself (a run's `document_mask`).

A block packs documents end to end, each ending with its corpus's EOS id, so under plain causal
attention a token also attends to the documents before it in the block. With a document mask the
model is given position ids that restart at 0 after every EOS. transformers reads a restart as the
start of another sequence (masking_utils' `find_packed_sequence_indices`, used whenever position ids
come without an attention mask or a cache) and builds the block-diagonal causal mask itself: a
boolean mask for SDPA and eager attention, a BlockMask for flex attention, and cu_seqlens for
flash-attention. A packed block then computes what its documents compute one by one
(tests/model/test_documents.py, fp32, 1e-5); no attention code of renewlm's own is involved.
"""

from __future__ import annotations

import json

import torch

from renewlm.model.load import ModelSource

# Model types whose transformers implementation computes a packed block as its documents alone, tested one
# by one in tests/model/test_documents.py. Outside it the mask silently does nothing or something else:
# Bloom and MPT add ALiBi biases from the token index, not the position ids; OPT derives its learned
# positions from the attention mask; Mamba has no attention to mask.
DOCUMENT_MASK_MODEL_TYPES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "gemma", "gemma2", "gemma3_text", "olmo", "olmo2",
    "granite", "cohere", "phi", "stablelm", "starcoder2", "gpt_neox", "gpt2", "gpt_bigcode", "gptj", "codegen",
)


def document_positions(inputs: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(batch, n) position of each token of a (batch, n) block in its own document: 0 at the start of the
    block and at the token after each EOS, counting up from there."""
    index = torch.arange(inputs.shape[1], device=inputs.device).expand_as(inputs)
    starts = torch.zeros_like(inputs, dtype=torch.bool)
    starts[:, 1:] = inputs[:, :-1] == eos_id
    # The index where each token's document starts: the latest start at or before it.
    first = torch.where(starts, index, 0).cummax(dim=1).values
    return index - first


def document_inputs(inputs: torch.Tensor, eos_id: int | None) -> dict:
    """The model's keyword arguments for masking a block per document at `eos_id` ({} for None: plain causal).
    No cache: transformers looks for packed sequences only without one (a config's `use_cache` would make one)."""
    if eos_id is None:
        return {}
    return {"position_ids": document_positions(inputs, eos_id), "use_cache": False}


def document_mask_problem(source: ModelSource | None) -> str | None:
    """Why a run's model cannot be masked per document, in one sentence; None when it can (presets are Llama)."""
    if source is None or source.kind == "preset":
        return None
    try:
        config = json.loads((source.path / "config.json").read_text())
    except (OSError, ValueError):
        return None  # the loader reports a missing or broken config.json in its own sentence
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if isinstance(config, dict) and "auto_map" in config:
        return (f"document_mask is set, but model {source.ref!r} runs its own model code (auto_map in config.json), "
                f"which renewlm cannot check masks attention per document; set document_mask: false")
    if model_type not in DOCUMENT_MASK_MODEL_TYPES:
        return (f"document_mask is set, but model {source.ref!r} is a {model_type!r} model, not one whose attention renewlm "
                f"has tested to mask per document from position ids ({', '.join(DOCUMENT_MASK_MODEL_TYPES)}); "
                f"set document_mask: false")
    return None
