"""The update request (updates/request.py): every rule that needs no store, refused from Python in the
sentence the command line prints, and the same rules where `plan` and `sweep` check their flags."""

import math

import pytest

from renewlm.errors import ConfigError
from renewlm.sweep.plan import SweepSettings, check_settings
from renewlm.updates.plan import check_inputs
from renewlm.updates.request import UpdateRequest, parse_replay

REPLAY_1 = "--replay 1 is outside [0, 1): --replay must be a share of every batch given to old data, e.g. --replay 0.05"
DECAY_0 = "--decay-fraction 0 is outside (0, 1]; a decay lasts a share of the run it branches off, e.g. --decay-fraction 0.1"


def request(**fields) -> UpdateRequest:
    return UpdateRequest(**{"name": "v2", "parent": "v1", "data": ["code"], "steps": 10, **fields})


def refusal(**fields) -> str:
    with pytest.raises(ConfigError) as e:
        request(**fields)
    return str(e.value)


def test_a_request_fills_in_the_defaults_and_keeps_what_is_given():
    r = request(data=["code:0.7", "prose:0.3"], steps=None, tokens=2e9)
    assert r.tokens == 2_000_000_000 and isinstance(r.tokens, int)  # a whole float is the count it names
    assert (r.paradigm, r.replay, r.recipe, r.lr, r.decay_fraction, r.then) == ("continue", 0.0, None, None, 0.1, None)
    assert request(paradigm="retrain").paradigm == "retrain"
    assert request(then=["code"], recipe="reuse", switch_at=10).switch_at == 10
    with pytest.raises(Exception):
        r.replay = 0.5  # frozen: a request is what was asked for


@pytest.mark.parametrize("replay, says", [
    (1, REPLAY_1), (1.0, REPLAY_1), (-0.5, "--replay -0.5 is outside [0, 1)"), (math.nan, "--replay nan is outside [0, 1)"),
])
def test_replay_is_a_share_of_every_batch(replay, says):
    assert refusal(replay=replay).startswith(says)


def test_replay_auto_takes_a_budget_and_a_budget_takes_replay_auto():
    assert request(replay="auto", forget_budget=0.02).replay == "auto" and parse_replay("0.25") == 0.25 == request(replay=0.25).replay
    for typed in ("half", "0.25", True):  # from Python a share is a number, as every field of a request is strict
        assert refusal(replay=typed).startswith(f"--replay {typed} is neither a share nor auto: give a share of every batch in [0, 1)")
    with pytest.raises(ConfigError, match=r"^--replay half is neither a share nor auto"):
        parse_replay("half")  # as the command line types it
    assert refusal(replay="auto") == ("--replay auto chooses the smallest share whose predicted forgetting is within a budget; "
                                      "add --forget-budget, e.g. --forget-budget 0.02 (nats)")
    assert refusal(forget_budget=0.02) == ("--forget-budget is the budget --replay auto chooses a share within; add --replay auto "
                                           "or leave it out")
    assert refusal(replay="auto", forget_budget=-1.0).startswith("--forget-budget must be a positive rise of held-out loss in nats")
    assert refusal(replay="auto", forget_budget=math.nan).startswith("--forget-budget must be a positive rise")
    assert refusal(predict=True, recipe="reuse", then=["prose"]) == (
        "--predict predicts an update of one blend; the reuse recipe's second (--then) is not predicted, so leave out --then")
    assert refusal(replay="auto", forget_budget=0.02, replay_source="parent").startswith(
        "--replay auto predicts replay of the lineage's own corpora; with --replay-source parent, give the share")
    assert refusal(replay="auto", forget_budget=0.02, replay_from=["prose"]).startswith(
        "--replay auto predicts replay of the lineage's own corpora; with --replay-from, give the share with --replay F")


@pytest.mark.parametrize("flags, says", [
    ({"predict": True}, "--predict"), ({"replay": "auto", "forget_budget": 0.02}, "--replay auto"),
])
def test_only_a_continued_update_is_predicted(flags, says):
    assert refusal(paradigm="switch", **flags) == (
        f"{says} predicts an update of the continue paradigm; renewlm does not yet predict --paradigm switch, so leave it "
        "out or use --paradigm continue")


@pytest.mark.parametrize("lr", [0.0, -1e-4, math.inf, math.nan])
def test_the_lr_is_positive_and_finite(lr):
    assert refusal(lr=lr) == f"--lr must be a positive learning rate (got {lr}); e.g. --lr 3e-4"


@pytest.mark.parametrize("fields, says", [
    ({"seq_len": 0}, "--seq-len must be a positive number of tokens (got 0); leave it out to take the parent's"),
    ({"batch_tokens": 0}, "--batch-tokens must be a positive number of tokens (got 0); leave it out to take the parent's"),
    ({"micro_batch": 0}, "--micro-batch must be a positive number of sequences (got 0); leave it out to take the parent's"),
    ({"steps": 0}, "--steps must be a positive number of steps (got 0); e.g. --steps 1000"),
    ({"steps": None, "tokens": -5}, "--tokens must be a positive number of tokens (got -5); e.g. --tokens 2e9"),
    ({"eval_every": -1}, "--eval-every must be a number of steps, 0 or more (got -1); 0 (the default) for none"),
    ({"checkpoint_every": -2}, "--checkpoint-every must be a number of steps, 0 or more (got -2); 0 (the default) for none"),
])
def test_sizes_are_positive_and_cadences_not_negative(fields, says):
    assert refusal(**fields) == says


def test_the_length_is_tokens_or_steps_exactly():
    says = "give exactly one of --tokens and --steps for the update's length"
    assert refusal(steps=None) == says
    assert refusal(tokens=100) == says


@pytest.mark.parametrize("fraction", [0, 1.5, math.nan])
def test_the_decay_fraction_is_a_share_in_0_1(fraction):
    assert refusal(paradigm="switch", decay_fraction=fraction).startswith(f"--decay-fraction {fraction:g} is outside (0, 1]")
    assert request(paradigm="switch", decay_fraction=1).decay_fraction == 1


def test_an_unknown_paradigm_is_named():
    assert refusal(paradigm="rebase") == "unknown paradigm 'rebase'; choose continue, switch or retrain"


def test_retrain_takes_no_recipe_then_or_replay():
    assert refusal(paradigm="retrain", replay=0.1) == (
        "--paradigm retrain trains from scratch on all the data, so it takes no --replay; leave it out")
    assert refusal(paradigm="retrain", recipe="wsd", then=["prose"], replay_from=["prose"]) == (
        "--paradigm retrain trains from scratch on all the data, so it takes no --recipe, --then, --replay-from; leave them out")


def test_switch_sets_its_own_schedules():
    for fields in ({"recipe": "cosine"}, {"then": ["prose"]}):
        assert refusal(paradigm="switch", **fields).startswith("--paradigm switch sets the schedules itself")
    assert request(paradigm="switch", replay=0.25).replay == 0.25  # replay it takes


def test_then_and_switch_at_belong_to_the_reuse_recipe():
    assert refusal(then=["prose"]).startswith("--then starts a second blend at the reuse recipe's switch event")
    assert refusal(then=["prose"], recipe="cosine").endswith("add --recipe reuse, or use a run file with phases for other schedules")
    assert refusal(recipe="reuse", switch_at=5) == (
        "--switch-at sets where the second blend starts; give that blend with --then (and --recipe reuse)")
    for paradigm in ("switch", "retrain"):
        assert refusal(paradigm=paradigm, switch_at=5) == (
            f"--switch-at moves the reuse recipe's blend switch, which --paradigm {paradigm} does not use; leave it out")
    for r in (1.0, 100.0, math.inf):
        assert refusal(then=["prose"], recipe="reuse", switch_at=r) == (
            f"--switch-at R switches blends at LR = start/R, so R must lie in (1, 100) (got {r}); e.g. --switch-at 5")


@pytest.mark.parametrize("data, says", [
    ([], "an update needs new data; give --data NAME (repeat for several)"),
    (["code:0"], "--data code:0: the weight after ':' must be a positive number, e.g. --data code:0.7"),
    (["code:x"], "--data code:x: the weight after ':' must be a positive number"),
    (["code", "code"], "--data names corpus 'code' twice; give each corpus once"),
    (["code:1", "prose"], "give a weight to every --data corpus (NAME:WEIGHT) or to none (weights by token count)"),
])
def test_data_items_are_names_with_weights_all_or_none(data, says):
    assert refusal(data=data).startswith(says)
    assert refusal(recipe="reuse", then=["prose:-1"]).startswith("--then prose:-1: the weight after ':'")


def test_every_problem_is_its_own_sentence_on_its_own_line():
    assert refusal(replay=2, lr=-1.0, micro_batch=0).splitlines() == [
        "--replay 2 is outside [0, 1): --replay must be a share of every batch given to old data, e.g. --replay 0.05",
        "--lr must be a positive learning rate (got -1.0); e.g. --lr 3e-4",
        "--micro-batch must be a positive number of sequences (got 0); leave it out to take the parent's",
    ]
    # The rules between flags are checked once each flag is fine; they too say one problem a line.
    assert refusal(paradigm="retrain", switch_at=5, tokens=100).splitlines() == [
        "give exactly one of --tokens and --steps for the update's length",
        "--switch-at moves the reuse recipe's blend switch, which --paradigm retrain does not use; leave it out",
    ]
    # A value of the wrong type from Python names the field, as every other config does.
    assert refusal(data="code") == "update request: data: Input should be a valid list (got 'code')"
    assert refusal(epochs=2) == "update request: epochs: unknown field; check its spelling against the documentation"


def test_plan_and_sweep_check_replay_and_decay_with_the_requests_rules(store):
    assert refusal(replay=1) == REPLAY_1
    with pytest.raises(ConfigError) as plan:
        check_inputs(2, 1e9, 0.1, 1, None)
    with pytest.raises(ConfigError) as sweep:
        check_settings(store, "s", SweepSettings(parent="v1", data=["code"], durations=[100], replay=1))
    assert str(plan.value) == str(sweep.value) == REPLAY_1
    assert refusal(paradigm="switch", decay_fraction=0) == DECAY_0
    with pytest.raises(ConfigError) as plan:
        check_inputs(2, 1e9, 0, 0.0, None)
    with pytest.raises(ConfigError) as sweep:
        check_settings(store, "s", SweepSettings(parent="v1", data=["code"], durations=[100], decay_fraction=0))
    assert str(plan.value) == str(sweep.value) == DECAY_0


def test_a_replay_sampled_from_the_parent_needs_a_share_and_no_corpora():
    assert request(replay=0.05, replay_source="parent").replay_source == "parent"
    assert refusal(replay_source="parent") == (
        "--replay-source parent samples the replay share from the parent, so it needs a share; add --replay, e.g. --replay 0.05")
    assert refusal(replay=0.05, replay_source="parent", replay_from=["prose"]) == (
        "--replay-source parent samples the replay from the parent instead of reading corpora; leave out --replay-from, "
        "or leave out --replay-source parent to replay those corpora")
    assert refusal(replay=0.05, replay_source="parent", tokenizer="tok2") == (
        "--replay-source parent samples with the parent's tokenizer, but --tokenizer trains on corpora prepared with its "
        "extension; sample the replay without --tokenizer, or prepare replay corpora with the extension and name them "
        "with --replay-from")
    assert refusal(replay=0.05, replay_temperature=0.7, replay_prompts="data") == (
        "--replay-temperature and --replay-prompts set how the replay is sampled from the parent; add --replay-source "
        "parent or leave them out")
    assert refusal(replay=0.05, replay_source="parent", replay_temperature=0.0) == (
        "--replay-temperature must be a positive temperature (got 0.0); 1 (the default) samples the parent's own distribution")
    assert refusal(paradigm="retrain", replay_source="parent") == (
        "--paradigm retrain trains from scratch on all the data, so it takes no --replay-source; leave it out")
