"""Reading DCP's files without unpickling them freely.

DCP's `.metadata` is a pickle, and DCP's loader unpickles its non-tensor items (the optimizer's
hyperparameters) with `weights_only=False`: either would run whatever a planted file asks. Here
`.metadata` is read with an unpickler that builds only DCP's own metadata classes, dtypes, sizes,
layouts and paths, and the items with `torch.load(weights_only=True)`; anything else is `Refused`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch.distributed.checkpoint import metadata as dcp_metadata
from torch.distributed.checkpoint._traverse import set_element
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
from torch.distributed.checkpoint.filesystem import FileSystemReader


class Refused(Exception):
    """A DCP file holds something other than plain checkpoint data: planted, or altered."""


class _MetadataUnpickler(pickle.Unpickler):
    """Builds DCP's metadata classes, dtypes, sizes, layouts and paths; refuses every other callable."""

    _ALLOWED = {
        ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
        ("torch", "Size"),
        ("torch.serialization", "_get_layout"),
        ("pathlib", "PosixPath"),
        ("pathlib", "PurePosixPath"),
        ("collections", "OrderedDict"),
    }

    def find_class(self, module: str, name: str):
        if module == dcp_metadata.__name__ and isinstance(getattr(dcp_metadata, name, None), type):
            return getattr(dcp_metadata, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise Refused(f"its .metadata calls {module}.{name}, which is not part of DCP's metadata")


def read_metadata(folder: Path) -> dcp_metadata.Metadata:
    """DCP's `.metadata`, unpickled with `_MetadataUnpickler`, or Refused."""
    with open(folder / ".metadata", "rb") as f:
        try:
            metadata = _MetadataUnpickler(f).load()
        except Refused:
            raise
        except Exception as e:
            raise Refused(f"its .metadata is not a readable pickle ({type(e).__name__})") from None
    if not isinstance(metadata, dcp_metadata.Metadata):
        raise Refused("its .metadata does not hold DCP metadata")
    for info in (metadata.storage_data or {}).values():
        if Path(str(info.relative_path)).name != str(info.relative_path):  # no reading outside the folder
            raise Refused(f"its .metadata points outside the checkpoint ({info.relative_path})")
    return metadata


class SafeReader(FileSystemReader):
    """DCP's reader, handed metadata already read safely (DCP's own read is a plain pickle.load)."""

    def __init__(self, path: Path, metadata: dcp_metadata.Metadata):
        super().__init__(path)
        self._metadata = metadata

    def read_metadata(self, *args, **kwargs):
        if getattr(self._metadata, "storage_meta", None) is None:
            self._metadata.storage_meta = dcp_metadata.StorageMeta()
        self._metadata.storage_meta.load_id = self.load_id
        return self._metadata


class SafePlanner(DefaultLoadPlanner):
    def load_bytes(self, read_item, value) -> None:
        # DefaultLoadPlanner unpickles these (optimizer hyperparameters) with weights_only=False.
        try:
            obj = torch.load(value, weights_only=True)
        except Exception:
            raise Refused(f"its item {read_item.dest_index.fqn} is not plain data (numbers, strings, lists)") from None
        if self.flatten_state_dict:
            set_element(self.original_state_dict, self.mappings[read_item.dest_index.fqn], obj)
        else:
            self.state_dict[read_item.dest_index.fqn] = obj
