"""`renewlm update` through the console entry point, for every paradigm × recipe × replay combination
docs/training.md and docs/versions.md allow, so a flag added to one path cannot break another."""

import pytest
import yaml

from renewlm.data.prepare import prepare
from renewlm.train.config import validate_run
from renewlm.train.loop import train
from renewlm.versions import read_version
from tests.conftest import prose_texts, write_jsonl
from tests.train.conftest import code_texts, run_dict

# (paradigm, recipe or None for the default, replay): continue takes every recipe with or without
# replay; switch sets its own schedules and takes replay; retrain takes neither.
COMBINATIONS = [
    *[("continue", recipe, replay) for recipe in (None, "cosine", "wsd", "reuse", "constant") for replay in (False, True)],
    ("switch", None, False),
    ("switch", None, True),
    ("retrain", None, False),
]
# The schedule each recipe writes into the run (the default is cosine).
SCHEDULES = {None: "cosine", "cosine": "cosine", "wsd": "wsd", "reuse": "reuse", "constant": "constant"}


@pytest.fixture(scope="module")
def base(train_store, tmp_path_factory):
    """cli-base: 3 steps of the tiny preset on corpus cli-old (prose), so cli-new (code) is new data and
    cli-old is replay. Both corpora are small: a run evaluates every held-out split at its start and
    end, and small splits keep the thirteen runs quick."""
    folder = tmp_path_factory.mktemp("update-cli")

    def pieces(texts):  # 1,000-character documents, so the held-out share is a few of them
        return [t[i : i + 1000] for t in texts for i in range(0, len(t), 1000)]

    # About 24k and 16k training tokens; 1.0k and 2.0k held out.
    for corpus, texts in (("cli-old", pieces(prose_texts())[:60]), ("cli-new", pieces(code_texts())[:40])):
        if not train_store.exists("corpora", corpus):
            prepare(train_store, corpus, [write_jsonl(folder / f"{corpus}.jsonl", texts)], "tok", val_fraction=0.05, workers=1)
    if not train_store.exists("versions", "cli-base"):
        cfg = run_dict("cli-base", steps=3, mixture={"phases": [{"corpora": {"cli-old": 1.0}}]})
        train(validate_run(cfg), train_store, fresh=True)
    return train_store


@pytest.mark.parametrize("paradigm,recipe,replay", COMBINATIONS, ids=lambda v: str(v))
def test_update_runs_every_documented_combination(cli, base, paradigm, recipe, replay):
    name = f"cli-{paradigm}-{recipe or 'default'}-{'replay' if replay else 'new'}"
    args = ["update", name, "--from", "cli-base", "--data", "cli-new", "--paradigm", paradigm, "--steps", "4",
            "--micro-batch", "8", "--store", base.root]
    if recipe:
        args += ["--recipe", recipe]
    if replay:
        args += ["--replay", "0.25"]
    if paradigm == "switch":
        args += ["--decay-fraction", "0.5"]  # a two-step decay off a four-step trunk
    code, out, err = cli(*args)
    assert code == 0, err
    meta = read_version(base, name)
    assert meta.kind == "release" and meta.paradigm == paradigm
    run = yaml.safe_load((base.path("runs", name) / "run.yaml").read_text())
    if paradigm == "continue":
        assert run["schedule"]["name"] == SCHEDULES[recipe] and meta.parent_names == ["cli-base"] and meta.parents[0].weight == 1.0
    if paradigm == "switch":
        assert meta.trunk == f"{name}-trunk" and read_version(base, f"{name}-trunk").kind == "trunk"
        assert run["schedule"]["name"] == "branch" and meta.steps == 2
    if paradigm == "retrain":
        assert run["from_scratch"] and meta.start == "fresh" and set(meta.corpora) == {"cli-old", "cli-new"}
    replayed = (run["mixture"].get("replay") or {}).get("fraction", 0)
    assert replayed == (0.25 if replay else 0)
    assert set(meta.losses) == {"cli-old", "cli-new"}  # the new data and the parent's: forgetting


def test_bad_flags_are_refused_one_sentence_a_line_before_the_store_is_read(cli, tmp_path):
    """The update's request is checked first: every problem on its own line, exit 2, and no store made."""
    code, out, err = cli("update", "v2", "--from", "no-such-version", "--data", "code", "--steps", "0", "--replay", "1",
                         "--paradigm", "retrain", "--recipe", "wsd", "--store", tmp_path / "store")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.splitlines() == [
        "error: --replay 1 is outside [0, 1): --replay must be a share of every batch given to old data, e.g. --replay 0.05",
        "--steps must be a positive number of steps (got 0); e.g. --steps 1000",
    ]
    code, _, err = cli("update", "v2", "--from", "no-such-version", "--data", "code", "--steps", "4", "--paradigm", "retrain",
                       "--recipe", "wsd", "--then", "code", "--store", tmp_path / "store")
    assert code == 2 and err == "error: --paradigm retrain trains from scratch on all the data, so it takes no --recipe, --then; leave them out\n"
    assert not (tmp_path / "store").exists()
