"""Llama-architecture presets for pre-training from scratch.

Parameter counts depend on the tokenizer's vocabulary; the table in docs/models.md gives them at the
vocabulary sizes the presets are meant for. `1b` is the shape of Llama-3.2-1B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from renewlm.errors import ConfigError
from renewlm.model.flops import training_flops

if TYPE_CHECKING:  # transformers (and torch with it, ~2 s) is imported only when a model is configured
    from transformers import LlamaConfig


# Tokens per sequence when neither a run nor its parent says: the presets' positions.
DEFAULT_SEQ_LEN = 2048


@dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    tie_embeddings: bool
    rope_theta: float = 10000.0

    def block_parameters(self) -> int:
        """Parameters outside both embeddings, from the shape alone: per layer q and o (d × d), k and v
        (d × kv_heads·head_dim), gate, up and down (d × ffn), two RMSNorms; then the final norm.
        tests/model/test_model.py checks it against a meta-device model of every preset."""
        d, kv = self.hidden, self.kv_heads * (self.hidden // self.heads)
        return self.layers * (2 * d * d + 2 * d * kv + 3 * d * self.ffn + 2 * d) + d


PRESETS: dict[str, Shape] = {
    "tiny": Shape(hidden=128, layers=2, heads=4, kv_heads=4, ffn=384, tie_embeddings=True),
    "small": Shape(hidden=384, layers=6, heads=6, kv_heads=6, ffn=1024, tie_embeddings=True),
    "125m": Shape(hidden=768, layers=12, heads=12, kv_heads=12, ffn=2048, tie_embeddings=False),
    "350m": Shape(hidden=1024, layers=24, heads=16, kv_heads=16, ffn=2816, tie_embeddings=False),
    "1b": Shape(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192, tie_embeddings=True, rope_theta=500000.0),
}


def padded_vocab(vocab_size: int, multiple: int = 64) -> int:
    """Embedding rows rounded up to a multiple of 64: matrix shapes that tile well on GPUs."""
    return -(-vocab_size // multiple) * multiple


def preset_flops_per_token(name: str, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token of a preset at a vocabulary size, without building a model or importing torch."""
    s = _shape(name)
    return training_flops(s.block_parameters(), vocab=padded_vocab(vocab_size), hidden=s.hidden, layers=s.layers, seq_len=seq_len)


def check_preset(name: str) -> str:
    """`name`, when the table above has it; ConfigError naming the presets otherwise."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return name


def _shape(name: str) -> Shape:
    return PRESETS[check_preset(name)]


def preset_config(
    name: str, vocab_size: int, *, bos_token_id: int | None, eos_token_id: int, max_position_embeddings: int = DEFAULT_SEQ_LEN
) -> LlamaConfig:
    from transformers import LlamaConfig

    s = _shape(name)
    return LlamaConfig(
        vocab_size=padded_vocab(vocab_size),
        hidden_size=s.hidden,
        num_hidden_layers=s.layers,
        num_attention_heads=s.heads,
        num_key_value_heads=s.kv_heads,
        intermediate_size=s.ffn,
        tie_word_embeddings=s.tie_embeddings,
        rope_theta=s.rope_theta,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        attn_implementation="sdpa",
        use_cache=False,
    )
