"""Where a run's model comes from: a preset (random weights), a version in the store, or a local
Hugging Face folder. Nothing is downloaded; a folder with its own model code runs only with
`trust_remote_code`; pickled weights are never opened (unpickling runs code), only safetensors."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.utils import logging as hf_logging

from renewlm.errors import ConfigError, CorruptError, InputError
from renewlm.manifest import MANIFEST, verify_manifest
from renewlm.model.flops import parameter_counts
from renewlm.model.presets import PRESETS, check_preset, preset_config
from renewlm.store import Store

_PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_SAFETENSORS_INDEX = "model.safetensors.index.json"


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "preset" | "version" | "folder"
    ref: str
    path: Path | None = None


def resolve_model_source(store: Store, ref: str) -> ModelSource:
    """`preset:NAME` or a preset name, a version in the store, or a local folder, in that order."""
    name = ref.removeprefix("preset:")
    if ref.startswith("preset:") or (name in PRESETS and not Path(ref).exists()):
        return ModelSource("preset", check_preset(name))
    if "/" not in ref and store.exists("versions", ref):
        return ModelSource("version", ref, store.path("versions", ref))
    path = Path(ref).expanduser()
    if not path.exists():
        raise InputError(
            f"model {ref!r} is neither a version in {store.root} nor an existing folder; "
            f"check the name with `renewlm versions` or the path"
        )
    return ModelSource("folder", str(path), path.absolute())


def max_positions(config) -> int | None:
    """The longest sequence the model's position embeddings cover, where its config says so."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def model_positions(folder: Path) -> int | None:
    """The longest sequence a Hugging Face folder's model supports, from its config.json."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None  # the loader reports a missing or broken config in one sentence
    return max_positions(SimpleNamespace(**config)) if isinstance(config, dict) else None


# Records renewlm rewrites in place after a version is written; read as JSON only, never as code or weights.
MUTABLE_RECORDS = ("evaluations.json",)


def verify_version(path: Path, name: str, only: tuple[str, ...] | None = None) -> None:
    """Refuse a version whose files (or just the `only` ones a reader opens) do not match its
    manifest, before any of them is opened."""
    if not (path / MANIFEST).is_file():
        raise CorruptError(
            f"version {name!r} ({path}) has no {MANIFEST}, so its files cannot be checked (written before "
            f"renewlm kept manifests, or never completed); if you trust its files, seal it with "
            f"`python -c \"from renewlm.manifest import write_manifest; write_manifest('{path}')\"`, "
            f"else remove it with `renewlm rm {name}`"
        )
    verify_manifest(path, f"version {name!r}", only=only, unlisted=MUTABLE_RECORDS)


def check_folder(path: Path, trust_remote_code: bool) -> None:
    """Refuse a folder that is not a loadable Hugging Face model before transformers or torch opens it."""
    if not path.is_dir():
        raise InputError(f"model folder {path} is not a folder; give a Hugging Face model folder")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise InputError(f"{path} has no config.json; it is not a Hugging Face model folder")
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{config_path} is not valid JSON ({e}); restore the model's config.json") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise InputError(f"{config_path} names no model_type; restore the config.json that save_pretrained wrote")
    has_safetensors = (path / _SAFETENSORS_INDEX).is_file() or any(path.glob("*.safetensors"))
    if not has_safetensors and any((path / w).is_file() for w in _PICKLED):
        raise InputError(
            f"{path} holds only pickled weights (pytorch_model.bin), which run code when opened; convert them "
            f"to safetensors where you trust the file (model.save_pretrained(folder, safe_serialization=True)) and use that folder"
        )
    if not has_safetensors:
        raise InputError(f"{path} has no weights (model.safetensors); save the model with save_pretrained")
    for shard in _safetensors_files(path):
        check_safetensors(shard)
    if "auto_map" in config and not trust_remote_code:
        raise ConfigError(
            f"{path} needs its own model code to load (config.json has auto_map); "
            f"pass --trust-remote-code (trust_remote_code: true) if you trust that code"
        )


def _safetensors_files(path: Path) -> list[Path]:
    index = path / _SAFETENSORS_INDEX
    if not index.is_file():
        return sorted(path.glob("*.safetensors"))
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{index} is not a valid safetensors index; save the model again with save_pretrained") from None
    missing = [s for s in shards if not (path / s).is_file()]
    if missing:
        raise InputError(f"{path} lacks {missing[0]}, named in {_SAFETENSORS_INDEX}; copy the whole model folder again")
    return [path / s for s in shards]


# safetensors' own limit on a header (MAX_HEADER_SIZE in its reader): a longer one is refused by it.
MAX_HEADER_BYTES = 100_000_000


def check_safetensors(file: Path) -> None:
    """A safetensors file is an 8-byte header length, a JSON header, then the tensors' bytes: a file
    shorter than its header says was cut off (an interrupted copy or download)."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length > MAX_HEADER_BYTES:  # read whole by json.loads, and refused by safetensors afterwards anyway
            raise InputError(
                f"{file} has a {length:,}-byte safetensors header, over the {MAX_HEADER_BYTES:,} bytes safetensors "
                f"reads, so it cannot be loaded; save the model again with safetensors"
            )
        try:
            if not 0 < length <= size - 8:
                raise ValueError
            header = json.loads(f.read(length))
            end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise InputError(f"{file} is not a readable safetensors file (damaged header); copy or save the model again") from None
    if 8 + length + end > size:
        raise InputError(
            f"{file} is truncated ({size:,} bytes, its header needs {8 + length + end:,}); copy or save the model again"
        )


@contextlib.contextmanager
def _quiet_transformers():
    # transformers logs a multi-line load report on a mismatch; renewlm refuses with one sentence instead.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def _from_pretrained(path: Path, trust_remote_code: bool, dtype: torch.dtype) -> nn.Module:
    kwargs = {"local_files_only": True, "trust_remote_code": trust_remote_code, "dtype": dtype,
              "use_safetensors": True, "output_loading_info": True}
    try:
        with _quiet_transformers():
            try:
                model, loading = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa", **kwargs)
            except (ValueError, ImportError) as e:  # an architecture without SDPA support: its default attention
                if "scaled_dot_product_attention" not in str(e):
                    raise
                model, loading = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
        if "size mismatch" in str(e) or "ignore_mismatched_sizes" in str(e):
            first = "a weight's shape differs from what config.json describes"
        raise InputError(f"{path} does not load as a causal language model ({first}); check that its config.json matches its weights") from None
    problems = {k: sorted(loading.get(k) or ()) for k in ("missing_keys", "mismatched_keys", "unexpected_keys")}
    if any(problems.values()):
        kind, keys = next((k, v) for k, v in problems.items() if v)
        raise InputError(
            f"{path}: config.json does not match the weights ({len(keys)} {kind.replace('_', ' ')}, e.g. {keys[0]}); "
            f"restore the config.json saved with these weights"
        )
    return model


def load_model(
    source: ModelSource,
    *,
    tokenizer=None,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
    max_position_embeddings: int = 2048,
    verified: bool = False,
    random_init: bool = False,
) -> tuple[nn.Module, dict]:
    """The model and what was loaded (kind, path, architecture, parameter counts).

    A version's files are checked against its manifest first, unless the caller did (`verified`).
    `random_init` builds the folder's architecture from its config with fresh (seeded) weights and
    reads none of its weights: the retrain-from-scratch baseline.
    """
    if source.kind == "preset":
        if tokenizer is None:
            raise ConfigError(f"preset {source.ref!r} needs a tokenizer for its vocabulary; give a tokenizer")
        config = preset_config(
            source.ref, len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            max_position_embeddings=max_position_embeddings,
        )
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    else:
        if source.kind == "version" and not verified:
            verify_version(source.path, source.ref)
        check_folder(source.path, trust_remote_code)
        if random_init:
            config = AutoConfig.from_pretrained(source.path, local_files_only=True, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            model = _from_pretrained(source.path, trust_remote_code, dtype)
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
            f"use the model's own tokenizer (or corpora prepared with it), or one extended from it with `renewlm tokenizer extend`"
        )
