"""A version's weights, read and written one tensor at a time.

The weights are `model.safetensors`, or shards listed in `model.safetensors.index.json`. Tensors are
read with plain file reads into fresh buffers, not through safetensors' memory map: the pages of a
mapped file count in a process's resident memory once touched, so averaging four mapped models
shows four models resident (400 MB read through `safe_open` left RSS 385 MB higher; read this way,
one tensor's worth). The writer streams as well: a merged tensor has the names, dtype and shape of
the first parent's, so the header is known before any tensor is merged and each one is written as
soon as it exists. A soup's memory is then a few tensors, whatever the number or size of its inputs
(benchmarks/soup_memory.py measures it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

import torch

from renewlm.errors import InputError
from renewlm.model.load import MAX_HEADER_BYTES

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def return_freed_tensors() -> None:
    """Have glibc give each freed tensor of 1 MiB or more back to the system at once.

    glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB), after
    which tensors of that size come from the heap, where freed memory stays resident: merging 8
    versions peaked 190 MB above merging 2 (benchmarks/soup_memory.py). A fixed threshold stops
    that adjustment, so the peak no longer grows with the number of inputs."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(libc), "mallopt", None) if libc else None
    if mallopt is not None:
        mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (malloc.h); fails harmlessly on another libc


@dataclass(frozen=True)
class TensorInfo:
    file: str  # the weight file holding it, relative to the version folder
    dtype: str  # the safetensors name: F32, BF16, ...
    shape: tuple[int, ...]
    offset: int  # first byte in the file
    nbytes: int

    @property
    def floating(self) -> bool:
        return DTYPES[self.dtype].is_floating_point


def _read_header(path: Path, file: str) -> tuple[dict, dict[str, TensorInfo]]:
    with open(path / file, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        try:
            if length > MAX_HEADER_BYTES:
                raise ValueError
            header = json.loads(f.read(length))
        except (ValueError, UnicodeDecodeError):
            raise InputError(f"{path / file} has a damaged safetensors header; save the version again") from None
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        if t["dtype"] not in DTYPES:
            raise InputError(f"{path / file}: tensor {name!r} has dtype {t['dtype']}, which soups do not handle")
        start, end = t["data_offsets"]
        tensors[name] = TensorInfo(file, t["dtype"], tuple(t["shape"]), 8 + length + start, end - start)
    return metadata, tensors


class Weights:
    """Where each tensor of a version's weights lives, and a reader for one tensor at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        if (folder / INDEX).is_file():
            weight_map = json.loads((folder / INDEX).read_text())["weight_map"]
            self.files = sorted(set(weight_map.values()))
        elif (folder / SINGLE).is_file():
            self.files = [SINGLE]
        else:
            raise InputError(f"{folder} has no {SINGLE} or {INDEX}; it holds no safetensors weights")
        self.metadata: dict[str, dict] = {}
        self.tensors: dict[str, TensorInfo] = {}
        for file in self.files:
            self.metadata[file], tensors = _read_header(folder, file)
            self.tensors.update(tensors)
        self._open: dict[str, BinaryIO] = {}

    def read(self, name: str) -> torch.Tensor:
        info = self.tensors[name]
        if info.file not in self._open:
            self._open[info.file] = open(self.folder / info.file, "rb")
        f = self._open[info.file]
        out = torch.empty(info.shape, dtype=DTYPES[info.dtype])
        f.seek(info.offset)
        if info.nbytes and f.readinto(out.reshape(-1).view(torch.uint8).numpy()) != info.nbytes:
            raise InputError(f"{self.folder / info.file} ends inside tensor {name!r}; the file is truncated, save the version again")
        return out

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def __enter__(self) -> Weights:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_file(path: Path, layout: dict[str, TensorInfo], metadata: dict, tensor: Callable[[str], torch.Tensor]) -> None:
    """Write a safetensors file holding `layout`'s tensors (dtype and shape as given), asking
    `tensor(name)` for each one only when its bytes are due."""
    header: dict = {"__metadata__": metadata} if metadata else {}
    start = 0
    for name, info in layout.items():
        nbytes = math.prod(info.shape) * DTYPES[info.dtype].itemsize
        header[name] = {"dtype": info.dtype, "shape": list(info.shape), "data_offsets": [start, start + nbytes]}
        start += nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # safetensors aligns the data to 8 bytes
    with open(path, "wb") as f:
        f.write(len(encoded).to_bytes(8, "little"))
        f.write(encoded)
        for name, info in layout.items():
            t = tensor(name)
            if t.dtype != DTYPES[info.dtype] or tuple(t.shape) != info.shape:
                raise ValueError(f"merged {name!r} is {t.dtype} {tuple(t.shape)}, expected {info.dtype} {info.shape}")
            f.write(t.contiguous().reshape(-1).view(torch.uint8).numpy().data)
