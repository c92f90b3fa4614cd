import hashlib
import json
import os

import pytest

from renewlm import manifest as manifest_module
from renewlm.errors import CorruptError
from renewlm.manifest import MANIFEST, sha256_file, verify_in_background, verify_manifest, write_manifest


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "entry"
    (root / "optimizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(3000))
    (root / "config.json").write_text('{"a": 1}')
    (root / "optimizer" / "shard.bin").write_bytes(os.urandom(500))
    (root / "optimizer" / MANIFEST).write_text("{}")  # a nested manifest is an ordinary, covered file
    (root / "empty").write_bytes(b"")
    write_manifest(root)
    return root


def flip(path, offset=100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_complete_folder_verifies_and_small_files_have_their_sha256sum(folder):
    manifest = verify_manifest(folder, "entry")
    files = manifest["files"]
    assert sorted(files) == ["config.json", "empty", "optimizer/manifest.json", "optimizer/shard.bin", "weights.bin"]
    assert files["weights.bin"] == {"bytes": 3000, "sha256": [sha256_file(folder / "weights.bin")]}
    assert files["empty"]["sha256"] == [hashlib.sha256(b"").hexdigest()]


def test_large_files_are_hashed_in_pieces_and_each_piece_is_checked(folder, monkeypatch):
    monkeypatch.setattr(manifest_module, "PIECE_BYTES", 1024)
    manifest = write_manifest(folder, threads=3)
    data = (folder / "weights.bin").read_bytes()
    assert manifest["files"]["weights.bin"]["sha256"] == [
        hashlib.sha256(data[i : i + 1024]).hexdigest() for i in (0, 1024, 2048)
    ]
    verify_manifest(folder, "entry", threads=2)
    flip(folder / "weights.bin", offset=2500)  # in the last piece
    with pytest.raises(CorruptError, match="'weights.bin' does not match its sha256"):
        verify_manifest(folder, "entry")


@pytest.mark.parametrize(
    "alter, message",
    [
        (lambda f: flip(f / "weights.bin"), "'weights.bin' does not match its sha256"),
        (lambda f: flip(f / "optimizer" / "shard.bin"), "'optimizer/shard.bin' does not match"),
        (lambda f: (f / "optimizer" / MANIFEST).write_text("{} "), "'optimizer/manifest.json' has 3 bytes"),
        (lambda f: (f / "weights.bin").write_bytes((f / "weights.bin").read_bytes()[:1000]), "has 1000 bytes.*truncated"),
        (lambda f: (f / "config.json").unlink(), "lacks 'config.json'"),
        (lambda f: (f / "optimizer" / "planted.pt").write_bytes(b"x"), "'optimizer/planted.pt', which its manifest does not list"),
        (lambda f: (f / "link").symlink_to(f / "config.json"), "'link', which is not a regular file"),
        (lambda f: (f / MANIFEST).unlink(), "has no manifest.json"),
        (lambda f: (f / MANIFEST).write_text("{\"files\": "), "unreadable manifest.json"),
        (lambda f: (f / MANIFEST).write_text(json.dumps({"format": 1, "piece_bytes": 5, "files": {"a": {"bytes": 9}}})), "malformed"),
        (lambda f: (f / MANIFEST).write_text("[]"), "malformed"),
    ],
)
def test_any_alteration_is_refused_with_one_sentence_naming_the_file(folder, alter, message):
    alter(folder)
    with pytest.raises(CorruptError, match=message) as e:
        verify_manifest(folder, "version v1")
    assert str(e.value).startswith("version v1") and "\n" not in str(e.value)


def test_a_manifest_listing_a_path_outside_the_folder_is_refused(folder, tmp_path):
    (tmp_path / "outside").write_text("secret")
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["../outside"] = {"bytes": 6, "sha256": [hashlib.sha256(b"secret").hexdigest()]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CorruptError, match="lacks '../outside'"):
        verify_manifest(folder, "entry")


def test_write_refuses_links(tmp_path):
    (tmp_path / "x").write_text("x")
    (tmp_path / "y").symlink_to(tmp_path / "x")
    with pytest.raises(CorruptError, match="'y', which is not a regular file"):
        write_manifest(tmp_path)


def test_verifying_in_background_returns_the_manifest_or_raises_at_result(folder):
    assert verify_in_background(folder, "entry").result()["files"]["config.json"]["bytes"] == 8
    flip(folder / "weights.bin")
    future = verify_in_background(folder, "entry")
    with pytest.raises(CorruptError, match="weights.bin"):
        future.result()
