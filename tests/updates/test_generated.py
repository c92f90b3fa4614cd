"""Replay sampled from the parent (updates/generated.py): a seeded, recorded, cached corpus, and its refusals."""

import json
import shutil

import numpy as np
import pytest

from renewlm.data.corpus import Corpus
from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.updates.generated import generated_replay
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_shape
from renewlm.versions import read_version
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def base(train_store):
    if not train_store.exists("versions", "gen-base"):
        train(validate_run(run_dict("gen-base", steps=3)), train_store, fresh=True)
    return train_store


def sample(store, said=None, **fields):
    request = UpdateRequest(**{"name": "g1", "parent": "gen-base", "data": ["code"], "replay": 0.25, "steps": 4,
                               "replay_source": "parent", **fields})
    shape = update_shape(store, request, read_version(store, "gen-base"))
    return generated_replay(store, request, shape, ["code"], say=(said.append if said is not None else lambda _: None))


def tokens(store, name):
    corpus = Corpus.open(store, name)
    return np.concatenate([corpus.train.read(0, corpus.train.num_tokens), corpus.val.read(0, corpus.val.num_tokens)])


def test_the_corpus_is_seeded_recorded_and_reused(base):
    said = []
    name, flops = sample(base, said, seed=3)
    corpus = Corpus.open(base, name)
    record = corpus.manifest["generated"]
    assert name.startswith("gen-base.replay-") and flops > 0 and record["flops"] == flops and record["seconds"] > 0
    assert {k: record[k] for k in ("version", "seed", "temperature", "prompts", "tokens", "made_for")} == {
        "version": "gen-base", "seed": 3, "temperature": 1.0, "prompts": "bos", "tokens": 256, "made_for": "g1"}
    assert corpus.train.num_tokens >= 256 and corpus.val.num_tokens >= 33  # the replay share of 4 steps of 256, and a sequence
    assert corpus.tokenizer_fingerprint == Corpus.open(base, "code").tokenizer_fingerprint
    assert said[0].startswith("sampling 289 replay tokens from 'gen-base'") and "FLOPs" in said[0]
    first = tokens(base, name)
    assert first[-1] == corpus.eos_id and len(np.flatnonzero(first == corpus.eos_id)) == corpus.train.num_documents + corpus.val.num_documents

    again = []
    assert sample(base, again, seed=3) == (name, flops)  # this update resumed: reused, and still its cost
    assert sample(base, again, seed=3, name="g2") == (name, 0.0)  # another update: reused, paid for once
    assert again == []  # nothing sampled

    shutil.rmtree(base.path("corpora", name))
    assert sample(base, seed=3)[0] == name and np.array_equal(tokens(base, name), first)  # the same seed, the same corpus
    other, _ = sample(base, seed=4)
    assert other != name and not np.array_equal(tokens(base, other)[:200], first[:200])


def test_prompts_from_the_new_data_and_a_temperature_make_another_corpus(base):
    name, _ = sample(base, seed=3, replay_prompts="data", replay_temperature=0.5)
    record = Corpus.open(base, name).manifest["generated"]
    assert (record["prompts"], record["prompt_corpora"], record["temperature"]) == ("data", ["code"], 0.5)
    assert name != sample(base, seed=3)[0]


def test_a_corpus_of_that_name_made_otherwise_is_not_reused(base):
    name, _ = sample(base, seed=5)
    manifest = base.path("corpora", name) / "corpus.json"
    made = json.loads(manifest.read_text())
    made["generated"]["temperature"] = 2.0
    manifest.write_text(json.dumps(made))
    with pytest.raises(ConfigError, match=rf"corpus '{name}' in the store was not sampled from version 'gen-base' with this "
                                          rf"update's settings, so it is not reused as its replay; remove .*{name} and run"):
        sample(base, seed=5)


def test_a_parent_without_a_tokenizer_is_refused(base):
    if not base.exists("versions", "gen-notok"):
        shutil.copytree(base.path("versions", "gen-base"), base.path("versions", "gen-notok"))
        (base.path("versions", "gen-notok") / "tokenizer.json").unlink()
    request = UpdateRequest(name="g3", parent="gen-notok", data=["code"], replay=0.25, steps=4, replay_source="parent")
    shape = update_shape(base, request, read_version(base, "gen-notok"))
    with pytest.raises(ConfigError, match="version 'gen-notok' has no tokenizer.json; import it again from a folder with its tokenizer"):
        generated_replay(base, request, shape, ["code"])
    assert not any(n.startswith("gen-notok.") for n in base.names("corpora"))


def test_update_with_a_replay_sampled_from_the_parent(cli, base):
    args = ("--from", "gen-base", "--data", "code", "--replay", "0.25", "--replay-source", "parent", "--steps", "4",
            "--micro-batch", "4", "--seed", "7", "--store", base.root)
    code, out, err = cli("update", "gen-child", *args)
    assert code == 0, err
    assert "sampling 289 replay tokens from 'gen-base'" in out
    meta = read_version(base, "gen-child")
    replay = [c for c in meta.corpora if c != "code"]
    assert len(replay) == 1 and replay[0].startswith("gen-base.replay-") and set(meta.losses) >= {"code", replay[0]}
    assert meta.generation_flops > 0 and meta.flops > meta.generation_flops
    code, out, err = cli("update", "gen-child2", *args)
    assert code == 0, err
    assert "sampling" not in out and read_version(base, "gen-child2").generation_flops == 0.0
    assert read_version(base, "gen-child2").corpora == meta.corpora
    code, _, err = cli("update", "gen-child3", "--from", "gen-base", "--data", "code", "--replay-source", "parent",
                       "--steps", "4", "--store", base.root)
    assert code == 2 and "--replay-source parent samples the replay share from the parent, so it needs a share" in err
