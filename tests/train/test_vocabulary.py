"""A run from a parent with an extended tokenizer: the embeddings grow, the lineage is still measured,
the version exports a tokenizer transformers loads; and what such a run refuses."""

import json
import math

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import EXTENSION, load_tokenizer, train_tokenizer
from renewlm.data.tokenizer_extend import extend_tokenizer
from renewlm.errors import ConfigError
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.train.metrics import read_metrics
from renewlm.train.run import build_optimizer
from renewlm.versions import export_version
from tests.conftest import new_language_texts, write_jsonl
from tests.train.conftest import run_dict


@pytest.fixture(scope="module")
def grown(train_store, tmp_path_factory):
    """Version `vb-base` (tiny preset on prose, tokenizer `tok`, 512 ids), tokenizer `tok-nl` (`tok` + 100
    tokens of the made-up language), corpus `nl` prepared with it, and version `vb-child` from `vb-base` on `nl`."""
    tmp = tmp_path_factory.mktemp("vocabulary")
    train(validate_run(run_dict("vb-base", steps=6)), train_store, fresh=True)
    texts = write_jsonl(tmp / "nl.jsonl", new_language_texts(400))
    extend_tokenizer(train_store, "tok-nl", "tok", [texts], 100, overwrite=True)
    prepare(train_store, "nl", [texts], "tok-nl", val_fraction=0.2, workers=1, overwrite=True)
    child = run_dict("vb-child", preset=None, parent="vb-base", tokenizer="tok-nl", mixture={"phases": [{"corpora": {"nl": 1.0}}]},
                     steps=4, embedding_lr_scale=3.0)
    info = train(validate_run(child), train_store, fresh=True)
    return train_store, info, tmp


def test_the_parent_grows_to_the_new_ids_and_the_lineage_is_still_measured(grown):
    store, info, _ = grown
    assert set(info["losses"]) == {"nl", "prose"}  # prose was prepared with `tok`: its ids mean the same to `tok-nl`
    base = AutoModelForCausalLM.from_pretrained(store.path("versions", "vb-base"))
    child = AutoModelForCausalLM.from_pretrained(store.path("versions", "vb-child"))
    assert base.get_input_embeddings().weight.shape[0] == 512 and child.get_input_embeddings().weight.shape[0] == 612
    assert child.config.vocab_size == 612 and (store.path("versions", "vb-child") / EXTENSION).is_file()
    # At step 0 the grown model is the base on old ids but for the softmax's normaliser: prose's loss rises, a little.
    base_final = [r["eval"] for r in read_metrics(store.path("runs", "vb-base") / "metrics.jsonl") if "eval" in r][-1]["prose"]
    child_first = [r["eval"] for r in read_metrics(store.path("runs", "vb-child") / "metrics.jsonl") if "eval" in r][0]["prose"]
    assert 0 < child_first - base_final < math.log1p(100 / 512)


def test_the_exported_version_loads_in_transformers_and_encodes_as_renewlm_does(grown):
    store, _, tmp = grown
    folder = export_version(store, "vb-child", tmp / "export", overwrite=True)
    theirs, ours = AutoTokenizer.from_pretrained(folder), load_tokenizer(store, "tok-nl")
    assert len(theirs) == 612
    for text in [*new_language_texts(20, seed=5), "def f(x):\n    return x  # naïve"]:
        assert theirs.encode(text) == ours.encode(text) and theirs.decode(theirs.encode(text)) == text


def test_embedding_lr_scale_gives_the_embedding_and_head_their_own_group():
    from renewlm.optim.schedule import set_lr
    from tests.model.test_resize import _model

    model = _model("llama")
    cfg = validate_run(run_dict("x", embedding_lr_scale=4.0))
    optimizer = build_optimizer(model, cfg)
    set_lr(optimizer, 1e-3)
    scaled = [g for g in optimizer.param_groups if "lr_scale" in g]
    assert len(optimizer.param_groups) == 3 and len(scaled) == 1
    assert {id(p) for p in scaled[0]["params"]} == {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    assert scaled[0]["lr"] == pytest.approx(4e-3) and all(g["lr"] == 1e-3 for g in optimizer.param_groups if g is not scaled[0])
    assert len(build_optimizer(model, validate_run(run_dict("x"))).param_groups) == 2  # the default keeps two groups
    with pytest.raises(ConfigError, match="embedding_lr_scale"):
        validate_run(run_dict("x", embedding_lr_scale=0))


@pytest.mark.parametrize("trunk_scale,branch_scale", [(1.0, 3.0), (3.0, 1.0)])
def test_a_branch_groups_its_parameters_its_own_way_and_keeps_the_trunks_moments(train_store, tmp_path, trunk_scale, branch_scale):
    """A trunk and its branch may differ in embedding_lr_scale (two optimizer groups against three): each
    parameter's moments and step come from the trunk, the groups and their lr_scale from the branch."""
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    from renewlm.train.optimizer_state import load_optimizer

    name = f"elr-trunk-{trunk_scale:g}"
    train(validate_run(run_dict(name, kind="trunk", steps=3, embedding_lr_scale=trunk_scale,
                                schedule={"name": "constant", "lr": 3e-3})), train_store, fresh=True)
    folder = train_store.path("versions", name)
    dcp_to_torch_save(folder / "optimizer", tmp_path / "trunk.pt")
    saved = torch.load(tmp_path / "trunk.pt", weights_only=False)["optim"]["state"]
    model = AutoModelForCausalLM.from_pretrained(folder)
    optimizer = build_optimizer(model, validate_run(run_dict("b", embedding_lr_scale=branch_scale)))
    load_optimizer(folder / "optimizer", model, optimizer)
    assert len(optimizer.param_groups) == (3 if branch_scale != 1 else 2)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        assert group.get("lr_scale", 1.0) in {1.0, branch_scale}
        for p in group["params"]:
            theirs = saved[names[id(p)]]
            assert float(optimizer.state[p]["step"]) == float(theirs["step"]) == 3.0
            assert torch.equal(optimizer.state[p]["exp_avg"], theirs["exp_avg"]) and torch.equal(optimizer.state[p]["exp_avg_sq"], theirs["exp_avg_sq"])


def test_a_tokenizer_extended_from_another_tokenizer_is_refused(grown):
    store, _, tmp = grown
    train_tokenizer(store, "other", [write_jsonl(tmp / "other.jsonl", ["other text entirely " * 40] * 20)], 300, overwrite=True)
    extend_tokenizer(store, "other-nl", "other", [tmp / "nl.jsonl"], 20, overwrite=True)
    cfg = run_dict("vb-bad", preset=None, parent="vb-base", tokenizer="other-nl", steps=1)
    with pytest.raises(ConfigError, match="tokenizer 'other-nl' extends another tokenizer than the one of parent 'vb-base'"):
        train(validate_run(cfg), store, fresh=True)
    assert not store.path("runs", "vb-bad").exists()


def test_a_corpus_of_the_old_tokenizer_in_the_mixture_and_load_optimizer_are_refused(grown):
    store, _, _ = grown
    cfg = run_dict("vb-bad", preset=None, parent="vb-base", tokenizer="tok-nl", steps=1, load_optimizer=True)
    with pytest.raises(ConfigError) as refused:
        train(validate_run(cfg), store, fresh=True)
    text = str(refused.value)
    assert "corpus 'prose' was prepared with another tokenizer than 'tok-nl'" in text and "prepare it again with --tokenizer tok-nl" in text
    assert "load_optimizer cannot carry 'vb-base''s optimizer state into embeddings grown" in text
    assert not store.path("runs", "vb-bad").exists()


def test_a_larger_tokenizer_that_extends_nothing_is_refused_in_one_sentence(grown):
    from renewlm.model.load import check_tokenizer

    store, _, _ = grown
    model = AutoModelForCausalLM.from_pretrained(store.path("versions", "vb-base"))
    with pytest.raises(ConfigError, match="embeds only 512; .* or one extended from it with `renewlm tokenizer extend`"):
        check_tokenizer(model, load_tokenizer(store, "tok-nl"))


def test_eval_reads_base_corpora_with_the_extension_and_compares_tokenizers_per_byte(grown, cli):
    import renewlm.cli.eval  # noqa: F401  (registers `eval` on the app)

    store, _, tmp = grown
    prepare(store, "nl-old", [tmp / "nl.jsonl"], "tok", val_fraction=0.2, workers=1, overwrite=True)  # the same text, old tokenizer
    code, out, err = cli("eval", "vb-child", "--data", "prose,nl", "--eval-tokens", "2048", "--json", "--store", store.root)
    assert code == 0, err
    child = json.loads(out)["versions"]["vb-child"]["heldout"]
    code, out, err = cli("eval", "vb-base", "--data", "nl-old,prose", "--eval-tokens", "2048", "--json", "--store", store.root)
    assert code == 0, err
    base = json.loads(out)["versions"]["vb-base"]["heldout"]
    assert child["prose"]["bytes_per_token"] == base["prose"]["bytes_per_token"]  # the same ids, read by both
    assert child["nl"]["bytes_per_token"] > 1.2 * base["nl-old"]["bytes_per_token"]  # the new tokens hold more text
    for e in (*child.values(), *base.values()):
        assert e["bits_per_byte"] == pytest.approx(e["loss"] / e["bytes_per_token"] / math.log(2))
    saved = json.loads((store.path("versions", "vb-child") / "evaluations.json").read_text())
    assert saved["heldout"]["nl"]["bits_per_byte"] == child["nl"]["bits_per_byte"]
    code, out, err = cli("eval", "vb-child", "--data", "nl", "--eval-tokens", "2048", "--store", store.root)
    assert code == 0 and "held-out bits per byte" in out, err
    code, _, err = cli("eval", "vb-base", "--data", "nl", "--store", store.root)
    assert code == 2 and "was prepared with another tokenizer than version 'vb-base'" in err and "--tokenizer vb-base" in err


def test_update_takes_the_extended_tokenizer_and_grows_the_parent(grown, cli):
    store, _, _ = grown
    code, out, err = cli("update", "vb-upd", "--from", "vb-base", "--data", "nl", "--tokenizer", "tok-nl", "--steps", "2",
                         "--store", store.root)
    assert code == 0, err
    grown_model = AutoModelForCausalLM.from_pretrained(store.path("versions", "vb-upd"))
    assert grown_model.get_input_embeddings().weight.shape[0] == 612
    code, _, err = cli("update", "vb-re", "--from", "vb-base", "--data", "nl", "--tokenizer", "tok-nl", "--steps", "2",
                       "--paradigm", "retrain", "--store", store.root)
    assert code == 2 and "--paradigm retrain trains from scratch on all the data, so it takes no --tokenizer" in err


def test_a_switch_update_grows_its_first_trunk_and_its_release_inherits_the_extended_tokenizer(grown, cli):
    store, _, tmp = grown
    code, out, err = cli("update", "vb-sw", "--from", "vb-base", "--data", "nl", "--tokenizer", "tok-nl", "--steps", "4",
                         "--paradigm", "switch", "--decay-fraction", "0.5", "--store", store.root)
    assert code == 0, err
    for name in ("vb-sw-trunk", "vb-sw"):
        model = AutoModelForCausalLM.from_pretrained(store.path("versions", name))
        assert model.get_input_embeddings().weight.shape[0] == 612, name
        assert (store.path("versions", name) / EXTENSION).is_file()
    release = json.loads((store.path("versions", "vb-sw") / "version.json").read_text())
    assert release["parents"] == [{"name": "vb-sw-trunk", "weight": 1.0}] and release["trunk"] == "vb-sw-trunk"
    # The next release continues that trunk with its AdamW state, whose moments have the trunk's 612 rows:
    # a further extension would need new rows the moments lack, and is refused before anything is written.
    extend_tokenizer(store, "tok-nl2", "tok-nl", [tmp / "nl.jsonl"], 20, overwrite=True)
    prepare(store, "nl2", [tmp / "nl.jsonl"], "tok-nl2", val_fraction=0.2, workers=1, overwrite=True)
    code, _, err = cli("update", "vb-sw2", "--from", "vb-sw", "--data", "nl2", "--tokenizer", "tok-nl2", "--steps", "4",
                       "--paradigm", "switch", "--decay-fraction", "0.5", "--store", store.root)
    assert code == 2 and "load_optimizer cannot carry" in err and "--paradigm continue --tokenizer tok-nl2" in err, err
    assert not store.path("runs", "vb-sw2-trunk").exists() and not store.exists("versions", "vb-sw2")


def test_a_damaged_extension_record_is_refused_before_anything_is_built(grown):
    import shutil

    store, _, _ = grown
    damaged = store.path("tokenizers", "tok-damaged")
    shutil.copytree(store.path("tokenizers", "tok-nl"), damaged, dirs_exist_ok=True)
    record = json.loads((damaged / EXTENSION).read_text())
    for base in record["bases"]:
        base["ids"] = 10**6  # more ids than the tokenizer holds
    (damaged / EXTENSION).write_text(json.dumps(record))
    cfg = run_dict("vb-damaged", preset=None, parent="vb-base", tokenizer="tok-damaged", steps=1,
                   mixture={"phases": [{"corpora": {"nl": 1.0}}]})
    with pytest.raises(ConfigError, match=r"records a base of 1000000 ids but holds 612; its extension record is damaged"):
        train(validate_run(cfg), store, fresh=True)
    assert not store.path("runs", "vb-damaged").exists()
