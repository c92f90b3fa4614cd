"""Security: nothing in a run folder is unpickled freely, so a planted file cannot run code even when
the manifest beside it was rewritten to match it; planted files are refused by the manifest."""

import ast
import inspect
import os
import pickle

import pytest
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict

from renewlm.errors import CorruptError
from renewlm.manifest import write_manifest
from renewlm.train import checkpoint as checkpoint_module
from renewlm.train import checkpoint_reader
from renewlm.train.checkpoint import RNG_FILE, Checkpointer
from tests.train.test_checkpoint import ONE, save_steps, trained


class Payload:
    """Unpickled freely, this runs a shell command: `touch MARKER`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("module", [checkpoint_module, checkpoint_reader])
def test_checkpoint_code_never_unpickles_freely(module):
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = getattr(node.func.value, "id", None)
            if (owner, node.func.attr) == ("torch", "load"):
                keywords = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                assert keywords.get("weights_only") is True, ast.unparse(node)
            assert (owner, node.func.attr) not in {("pickle", "load"), ("pickle", "loads")}, ast.unparse(node)
    assert "rng.pt" not in inspect.getsource(module)


def test_rng_states_are_safetensors_not_a_pickle(tmp_path):
    checkpointer, _, _ = save_steps(tmp_path / "checkpoints", [1])
    head = (checkpointer.latest() / RNG_FILE).read_bytes()[:9]
    assert head[8:9] == b"{"  # safetensors: an 8-byte header length, then the JSON header
    assert head[:1] != b"\x80"  # a pickle starts with its protocol opcode


def test_a_planted_metadata_pickle_runs_nothing_even_with_a_matching_manifest(tmp_path):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [1])
    path, marker = checkpointer.latest(), tmp_path / "pwned"
    (path / ".metadata").write_bytes(pickle.dumps(Payload(marker)))
    write_manifest(path)  # whoever planted it could rewrite the manifest too
    with pytest.raises(CorruptError, match=r"was refused: its .metadata calls posix.system.*remove it") as e:
        checkpointer.load(path, model, optimizer)
    assert not marker.exists() and "\n" not in str(e.value)


def test_a_planted_pickle_inside_a_dcp_shard_runs_nothing(tmp_path):
    model, optimizer = trained()
    marker = tmp_path / "pwned"
    model_sd, optim_sd = get_state_dict(model, optimizer)
    optim_sd["param_groups"][0]["lr"] = Payload(marker)  # DCP stores non-tensor items with torch.save
    path = tmp_path / "checkpoints" / "step-00000001"
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
    save_steps(tmp_path / "donor", [1])
    (path / RNG_FILE).write_bytes((tmp_path / "donor" / "step-00000001" / RNG_FILE).read_bytes())
    (path / "train.json").write_text('{"step": 1}')
    write_manifest(path)
    with pytest.raises(CorruptError, match=r"its item optim.param_groups.0.lr is not plain data"):
        Checkpointer(tmp_path / "checkpoints", ONE, keep=2).load(path, model, optimizer)
    assert not marker.exists()
    # The payload is live: DCP's own loader runs it.
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
    assert marker.exists()


def test_metadata_pointing_outside_the_checkpoint_is_refused(tmp_path):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [1])
    path = checkpointer.latest()
    metadata = pickle.loads((path / ".metadata").read_bytes())
    for info in metadata.storage_data.values():
        info.relative_path = "../../elsewhere.distcp"
    (path / ".metadata").write_bytes(pickle.dumps(metadata))
    write_manifest(path)
    with pytest.raises(CorruptError, match="points outside the checkpoint"):
        checkpointer.load(path, model, optimizer)


def test_a_planted_rng_pickle_beside_a_checkpoint_is_refused_as_unlisted(tmp_path):
    checkpointer, model, optimizer = save_steps(tmp_path / "checkpoints", [1, 2])
    marker = tmp_path / "pwned"
    (checkpointer.latest() / "rng.pt").write_bytes(pickle.dumps(Payload(marker)))
    path, notes = checkpointer.resume_point()
    assert path.name == "step-00000001" and "'rng.pt', which its manifest does not list" in notes[0]
    checkpointer.load(path, model, optimizer, verified=True)
    assert not marker.exists()
