"""Where a run's model comes from: a preset (random weights), a version in the store, or a local
Hugging Face folder. Nothing is downloaded; a folder with its own model code runs only with
`trust_remote_code`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from renewlm.errors import ConfigError, InputError
from renewlm.model.flops import parameter_counts
from renewlm.model.presets import PRESETS, preset_config
from renewlm.store import Store

_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "preset" | "version" | "folder"
    ref: str
    path: Path | None = None


def resolve_model_source(store: Store, ref: str) -> ModelSource:
    """`preset:NAME` or a preset name, a version in the store, or a local folder, in that order."""
    name = ref.removeprefix("preset:")
    if ref.startswith("preset:") or (name in PRESETS and not Path(ref).exists()):
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return ModelSource("preset", name)
    if "/" not in ref and store.exists("versions", ref):
        return ModelSource("version", ref, store.path("versions", ref))
    path = Path(ref).expanduser()
    if not path.exists():
        raise InputError(
            f"model {ref!r} is neither a version in {store.root} nor an existing folder; "
            f"check the name with `renewlm versions` or the path"
        )
    return ModelSource("folder", str(path), path.absolute())


def check_folder(path: Path, trust_remote_code: bool) -> None:
    if not path.is_dir():
        raise InputError(f"model folder {path} is not a folder; give a Hugging Face model folder")
    config = path / "config.json"
    if not config.is_file():
        raise InputError(f"{path} has no config.json; it is not a Hugging Face model folder")
    if not any((path / w).is_file() for w in _WEIGHTS):
        raise InputError(f"{path} has no weights (model.safetensors or pytorch_model.bin); save the model with save_pretrained")
    if "auto_map" in json.loads(config.read_text()) and not trust_remote_code:
        raise ConfigError(
            f"{path} needs its own model code to load (config.json has auto_map); "
            f"pass --trust-remote-code (trust_remote_code: true) if you trust that code"
        )


def load_model(
    source: ModelSource,
    *,
    tokenizer=None,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    max_position_embeddings: int = 2048,
) -> tuple[nn.Module, dict]:
    """The model and what was loaded (kind, path, architecture, parameter counts)."""
    if source.kind == "preset":
        if tokenizer is None:
            raise ConfigError(f"preset {source.ref!r} needs a tokenizer for its vocabulary; give a tokenizer")
        config = preset_config(
            source.ref, len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=max_position_embeddings,
        )
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    else:
        check_folder(source.path, trust_remote_code)
        kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code, "dtype": dtype}
        try:
            model = AutoModelForCausalLM.from_pretrained(source.path, attn_implementation="sdpa", **kwargs)
        except (ValueError, ImportError):  # an architecture without SDPA support: its default attention
            model = AutoModelForCausalLM.from_pretrained(source.path, **kwargs)
    info = {
        "kind": source.kind,
        "ref": source.ref,
        "path": str(source.path) if source.path else None,
        "architecture": type(model).__name__,
        "parameters": parameter_counts(model),
    }
    return model, info


def check_tokenizer(model: nn.Module, tokenizer) -> None:
    """The tokenizer's ids must all have a row in the model's embedding."""
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows or (tokenizer.eos_token_id is not None and tokenizer.eos_token_id >= rows):
        raise ConfigError(
            f"the tokenizer has {len(tokenizer)} tokens but the model {type(model).__name__} embeds only {rows}; "
            f"use the model's own tokenizer (or corpora prepared with it)"
        )
