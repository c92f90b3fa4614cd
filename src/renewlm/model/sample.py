"""Generation: a version's continuation of a prompt, with transformers' `generate`.

Temperature 0 is greedy decoding; above 0 it samples (nucleus sampling with `top_p`), seeded, so the
same model, prompt and settings give the same text on the same device.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from renewlm.errors import ConfigError
from renewlm.model.load import max_positions


def check_sampling(prompt: str, max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Refuse settings `generate` would reject or silently misread, before a model is loaded."""
    if not prompt.strip():
        raise ConfigError("--prompt is empty; give the text the model should continue")
    if max_new_tokens <= 0:
        raise ConfigError(f"--max-new-tokens {max_new_tokens} must be at least 1")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(f"--temperature {temperature} must be a finite number ≥ 0 (0 is greedy decoding)")
    if not (0 < top_p <= 1):
        raise ConfigError(f"--top-p {top_p} must be in (0, 1] (1 keeps every token)")


def generate(
    model: nn.Module,
    tokenizer,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> str:
    """The model's continuation of `prompt` (the new text only, special tokens left out)."""
    check_sampling(prompt, max_new_tokens, temperature, top_p)
    device = next(model.parameters()).device
    inputs = tokenizer(prompt, return_tensors="pt").to(device)
    length = inputs["input_ids"].shape[1]
    limit = max_positions(model.config)
    if limit is not None and length + max_new_tokens > limit:
        raise ConfigError(
            f"the prompt ({length} tokens) plus --max-new-tokens {max_new_tokens} exceeds the model's {limit} "
            f"positions; shorten the prompt or lower --max-new-tokens"
        )
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    output = sample_ids(model, inputs["input_ids"], max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                        seed=seed, eos=eos, pad=pad, attention_mask=inputs.get("attention_mask"))
    return tokenizer.decode(output[0, length:], skip_special_tokens=True)


def sample_ids(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    eos: int | None,
    pad: int | None,
    top_p: float = 1.0,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Prompts (a batch of equally long rows) and their continuations, batched with the KV cache; a row that ends
    (EOS) is padded with `pad` to the longest."""
    from transformers import GenerationConfig

    # A fresh config, not the folder's generation_config.json: the arguments alone decide the decoding.
    if temperature == 0:
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad)
    else:
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
            eos_token_id=eos, pad_token_id=pad, use_cache=True,
        )
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    device = input_ids.device
    model.eval()
    # the seed is this call's alone: the caller's random state is restored afterwards
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
        torch.manual_seed(seed)
        return model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
