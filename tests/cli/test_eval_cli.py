"""`renewlm eval` through the CLI: the matrix equals the runs' own held-out losses, the summary, the
record beside the version, lm-eval tasks, and bad input (one sentence, exit 2, no record changed)."""

import hashlib
import json
import math

import pytest

import renewlm.cli.eval  # noqa: F401  (registers `eval` on the app)
from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from tests.train.conftest import run_dict
from tests.updates.test_switch import series  # noqa: F401  (a fixture: a path-switching series of releases)


@pytest.fixture(scope="module")
def trained(train_store):
    base = train(validate_run(run_dict("ev-base")), train_store, fresh=True)
    child = run_dict("ev-child", preset=None, tokenizer=None, parent="ev-base", mixture={"phases": [{"corpora": {"code": 1.0}}]}, steps=4)
    return train_store, base, train(validate_run(child), train_store, fresh=True)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_matrix_is_the_runs_final_held_out_loss_and_is_recorded_beside_the_version(cli, trained):
    store, base, child = trained
    folder = store.path("versions", "ev-child")
    before = {p.name: digest(p) for p in folder.iterdir() if p.is_file()}
    code, out, err = cli("eval", "ev-base", "ev-child", "--eval-tokens", "1024", "--json", "--store", store.root)
    assert code == 0, err
    result = json.loads(out)
    assert result["corpora"] == ["prose", "code"] and result["settings"]["seq_len"] == 32
    rows = result["versions"]
    for name, info in (("ev-base", base), ("ev-child", child)):
        for corpus, loss in info["losses"].items():
            assert rows[name]["heldout"][corpus]["loss"] == pytest.approx(loss, rel=1e-6)
            assert rows[name]["heldout"][corpus]["perplexity"] == pytest.approx(math.exp(loss), rel=1e-6)
    summary = rows["ev-child"]["summary"]
    assert summary["updated_on"] == ["code"]
    assert summary["adaptation"] == pytest.approx(rows["ev-base"]["heldout"]["code"]["loss"] - child["losses"]["code"], rel=1e-6)
    assert summary["forgetting"] == pytest.approx(child["losses"]["prose"] - rows["ev-base"]["heldout"]["prose"]["loss"], rel=1e-6)
    # weights and version.json untouched; the results sit in evaluations.json
    after = {p.name: digest(p) for p in folder.iterdir() if p.is_file() and p.name != "evaluations.json"}
    assert after == before
    saved = json.loads((folder / "evaluations.json").read_text())
    assert saved["heldout"]["code"]["loss"] == rows["ev-child"]["heldout"]["code"]["loss"]
    assert saved["heldout"]["code"]["seq_len"] == 32 and saved["summary"]["adaptation"] == summary["adaptation"]
    # `show` and `versions` show what was measured (the version still verifies: evaluations.json may change)
    code, out, err = cli("show", "ev-child", "--store", store.root)
    assert code == 0 and '"evaluations"' in out, err
    code, out, err = cli("versions", "--store", store.root)
    assert code == 0 and f"adaptation {summary['adaptation']:+.3f}" in " ".join(out.split()), err


def test_the_table_shows_versions_by_corpora(cli, trained):
    store, _, _ = trained
    train(validate_run(run_dict("ev-table", steps=2)), store, fresh=True)
    code, out, err = cli("eval", "ev-table", "--data", "code", "--eval-tokens", "256", "--store", store.root)
    assert code == 0, err
    header = next(line for line in out.splitlines() if "version" in line)
    assert "code" in header and "adaptation" in header and "forgetting" in header and "prose" not in header
    assert any(line.startswith("│ ev-table") for line in out.splitlines())
    saved = json.loads((store.path("versions", "ev-table") / "evaluations.json").read_text())
    assert saved["heldout"]["code"]["eval_tokens"] == 256


def test_evaluating_again_merges_into_the_record(cli, trained):
    store, _, _ = trained
    code, _, err = cli("eval", "ev-table", "--data", "prose", "--eval-tokens", "256", "--store", store.root)
    assert code == 0, err
    saved = json.loads((store.path("versions", "ev-table") / "evaluations.json").read_text())
    assert set(saved["heldout"]) == {"code", "prose"}


def test_local_tasks_give_accuracy_and_a_core_average(cli, train_store, tmp_path, capsys):
    pytest.importorskip("lm_eval")
    train(validate_run(run_dict("ev-tasks", steps=2)), train_store, fresh=True)
    capsys.readouterr()  # the run's own lines
    docs = [{"q": f"Question {i}", "choices": ["the", "a"], "label": i % 2} for i in range(4)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "tiny_qa.yaml").write_text(
        f"task: tiny_qa\ndataset_path: json\ndataset_kwargs: {{data_files: {{test: {tmp_path / 'qa.jsonl'}}}}}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{q}}:'\ndoc_to_choice: '{{choices}}'\n"
        "doc_to_target: label\nmetric_list: [{metric: acc, aggregation: mean, higher_is_better: true}]\n"
    )
    (tmp_path / "core.yaml").write_text("tasks:\n  tiny_qa: {category: toy, random_baseline: 0.5}\n")
    code, out, err = cli("eval", "ev-tasks", "--tasks", "tiny_qa", "--include-path", tmp_path, "--limit", "3", "--core",
                         tmp_path / "core.yaml", "--batch-size", "2", "--eval-tokens", "256", "--json", "--store", train_store.root)
    assert code == 0, err
    entry = json.loads(out)["versions"]["ev-tasks"]
    acc = entry["tasks"]["tiny_qa"]["acc"]
    assert acc in (0.0, 1 / 3, 2 / 3, 1.0)  # 3 examples
    assert entry["core_average"]["core_average"] == pytest.approx((acc - 0.5) / 0.5)
    saved = json.loads((train_store.path("versions", "ev-tasks") / "evaluations.json").read_text())
    assert saved["tasks"]["tiny_qa"]["acc"] == acc and saved["tasks"]["tiny_qa"]["limit"] == 3


@pytest.fixture(scope="module")
def other_corpus(train_store, tmp_path_factory):
    """A corpus prepared with another tokenizer than the versions'."""
    tmp = tmp_path_factory.mktemp("other")
    texts = tmp / "t.jsonl"
    texts.write_text("".join(json.dumps({"text": f"line {i} of some other text"}) + "\n" for i in range(200)))
    train_tokenizer(train_store, "ev-other-tok", [texts], 300)
    prepare(train_store, "ev-other", [texts], "ev-other-tok", val_fraction=0.2, workers=1)
    return "ev-other"


@pytest.mark.parametrize("args, says", [
    (["ev-nope"], "no version named 'ev-nope'"),
    (["ev-base", "--data", "nope"], "no corpus named 'nope'"),
    (["ev-base", "--data", "code,nope"], "no corpus named 'nope'"),
    (["ev-base", "--limit", "0"], "--limit 0 must be at least 1; leave it out to run every example"),
    (["ev-base", "--micro-batch", "0"], "--micro-batch 0 must be at least 1"),
    (["ev-base", "--seq-len", "100000"], "is longer than the"),
])
def test_bad_input_is_one_sentence_and_changes_no_record(cli, trained, args, says):
    store, _, _ = trained
    record = store.path("versions", "ev-base") / "evaluations.json"
    before = record.read_bytes() if record.exists() else None
    code, _, err = cli("eval", *args, "--store", store.root)
    assert code == 2 and says in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert (record.read_bytes() if record.exists() else None) == before


def test_a_corpus_of_another_tokenizer_is_refused(cli, trained, other_corpus):
    store, _, _ = trained
    code, _, err = cli("eval", "ev-child", "--data", other_corpus, "--store", store.root)
    assert code == 2 and "was prepared with another tokenizer than version 'ev-child'" in err


def test_an_unknown_local_task_lists_close_matches(cli, trained, tmp_path):
    pytest.importorskip("lm_eval")
    store, _, _ = trained
    (tmp_path / "t.yaml").write_text("task: tiny_words\ndataset_path: json\noutput_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: '{{text}}'\n")
    code, _, err = cli("eval", "ev-base", "--tasks", "tiny_word", "--include-path", tmp_path, "--store", store.root)
    assert code == 2 and "unknown lm-eval task 'tiny_word' (close: tiny_words" in err


def test_a_switch_series_listed_by_its_releases_gets_adaptation_and_forgetting(cli, series):
    from renewlm.versions import read_version

    store, _ = series  # sw-base on prose, then switch updates on code, sw-c3, sw-c4, each replaying 25%
    code, out, err = cli("eval", "sw-base", "sw2", "sw3", "sw4", "--eval-tokens", "256", "--json", "--store", store.root)
    assert code == 0, err
    summary = {v: e["summary"] for v, e in json.loads(out)["versions"].items()}
    for release, before, new in (("sw2", "sw-base", "code"), ("sw3", "sw2", "sw-c3"), ("sw4", "sw3", "sw-c4")):
        assert len(read_version(store, release).corpora) > 1  # it replayed what came before...
        assert summary[release]["updated_on"] == [new]  # ...and only the new corpus is starred
        assert summary[release]["compared_with"]["parents"] == [before] and summary[release]["adaptation"] is not None
        assert summary[release]["forgetting"] is not None and not summary[release]["notes"]
    assert "sw2" in summary["sw4"]["compared_with"]["earlier"]  # an earlier release of the series, not an ancestor


def test_the_old_corpora_flag_still_names_corpora_with_a_note(cli, trained):
    store, _, _ = trained
    code, _, err = cli("eval", "ev-base", "--corpora", "nope", "--store", store.root)
    note, error = err.splitlines()
    assert code == 2 and note == "note: --corpora is renamed --data; the old spelling goes in the next release"
    assert error.startswith("error: ") and "no corpus named 'nope'" in error


def test_a_version_trained_with_document_mask_is_evaluated_with_it(cli, store, make_corpus, capsys):
    import torch

    from renewlm.data.corpus import Corpus
    from renewlm.distributed import Dist
    from renewlm.eval.evaluator import HeldOut
    from renewlm.versions import load_version, read_version
    from tests.conftest import sentences

    make_corpus("short", sentences(), val_fraction=0.1)
    run = run_dict("masked", mixture={"phases": [{"corpora": {"short": 1.0}}]}, steps=4, document_mask=True)
    info = train(validate_run(run), store, fresh=True)
    capsys.readouterr()  # the run's own lines
    assert read_version(store, "masked").document_mask is True
    code, out, err = cli("eval", "masked", "--eval-tokens", "1024", "--json", "--store", store.root)
    assert code == 0, err
    row = json.loads(out)["versions"]["masked"]["heldout"]["short"]
    assert row["loss"] == pytest.approx(info["losses"]["short"], rel=1e-6) and row["document_mask"] is True
    saved = json.loads((store.path("versions", "masked") / "evaluations.json").read_text())
    assert saved["heldout"]["short"]["document_mask"] is True
    # The same weights attending across documents measure another loss: the record's setting decided the number.
    model, _ = load_version(store, "masked")
    across = HeldOut({"short": Corpus.open(store, "short")}, seq_len=32, max_tokens=1024, micro_batch=2,
                     dist_=Dist.single(torch.device("cpu"))).evaluate(model)["short"]
    assert abs(across - row["loss"]) > 1e-3
