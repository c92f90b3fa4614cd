"""Verdicts against the spread, the choice of corpora for the mixture and its weights, the best duration."""

import pytest

from renewlm.data.mixture import validate_mixture
from renewlm.sweep.characterize import (
    characterize,
    flatten,
    lower_is_better,
    mixture_choice,
    suggested_mixture,
    verdict,
)
from renewlm.sweep.plan import SweepSettings
from renewlm.sweep.record import best_tokens, duration_cost


def test_a_difference_within_the_spread_is_unchanged():
    assert verdict(-0.05, 0.1, lower_better=True) == "unchanged"
    assert verdict(0.1, 0.1, lower_better=True) == "unchanged"  # not larger than the spread
    assert verdict(-0.2, 0.1, lower_better=True) == "helps"
    assert verdict(0.2, 0.1, lower_better=True) == "hurts"
    assert verdict(0.2, 0.1, lower_better=False) == "helps"  # an accuracy that rose
    assert verdict(1e-9, 0.0, lower_better=True) == "hurts"  # no repeats: every difference counts


def test_losses_and_perplexities_are_lower_is_better_accuracies_higher():
    assert lower_is_better("heldout/code") and lower_is_better("task/wikitext/word_perplexity")
    assert not lower_is_better("task/hellaswag/acc_norm") and not lower_is_better("core_average")


def test_flatten_names_every_number_and_drops_standard_errors():
    entry = {"heldout": {"code": {"loss": 2.0, "perplexity": 7.4}},
             "tasks": {"arc_easy": {"acc": 0.5, "acc_stderr": 0.01, "alias": "arc_easy"}},
             "core_average": {"core_average": 0.33, "categories": {}}}
    assert flatten(entry) == {"heldout/code": 2.0, "task/arc_easy/acc": 0.5, "core_average": 0.33}


def test_characterize_uses_the_spread_of_each_evaluation_over_the_seeds():
    parent = {"heldout/code": 3.0, "heldout/prose": 2.0, "task/arc_easy/acc": 0.40}
    best = {"heldout/code": 2.5, "heldout/prose": 2.05, "task/arc_easy/acc": 0.30}
    noise = [{"heldout/code": 2.6, "heldout/prose": 2.10, "task/arc_easy/acc": 0.41},
             {"heldout/code": 2.7, "heldout/prose": 2.00, "task/arc_easy/acc": 0.39}]
    out = characterize(parent, best, noise)
    assert out["heldout/code"]["verdict"] == "helps" and out["heldout/code"]["spread"] == pytest.approx(0.1)
    assert out["heldout/prose"]["verdict"] == "unchanged"  # +0.05 within a spread of 0.10
    assert out["task/arc_easy/acc"]["verdict"] == "hurts" and out["task/arc_easy/acc"]["delta"] == pytest.approx(-0.1)


def test_a_corpus_that_hurts_the_lineage_or_leaves_its_target_alone_is_left_out():
    helps = {"verdict": "helps"}
    assert mixture_choice("code", {"heldout/code": helps, "heldout/prose": {"verdict": "unchanged"}}, ["prose"])[0]
    kept, why = mixture_choice("code", {"heldout/code": helps, "heldout/prose": {"verdict": "hurts"}}, ["prose"])
    assert not kept and "prose" in why
    kept, why = mixture_choice("code", {"heldout/code": {"verdict": "unchanged"}}, ["prose"])
    assert not kept and "unchanged" in why


def test_the_suggested_mixture_weights_the_helpful_corpora_by_their_best_token_counts():
    s = SweepSettings(parent="base", data=["a", "b", "c"], durations=[1, 2])
    entries = {"a": {"in_mixture": True, "best_tokens": 8_000}, "b": {"in_mixture": True, "best_tokens": 40_000},
               "c": {"in_mixture": False, "best_tokens": 16_000}}
    mixture = suggested_mixture(None, s, entries, ["prose"])
    assert mixture["phases"] == [{"corpora": {"a": 8_000, "b": 40_000}, "end": 1.0}]
    shares = validate_mixture(mixture).phase_weights()[0]
    assert shares == pytest.approx({"a": 8 / 48, "b": 40 / 48})  # Databricks' 8:40
    assert suggested_mixture(None, s, {"a": {"in_mixture": False, "best_tokens": 1}}, []) is None


def test_the_best_duration_is_the_shortest_within_the_spread_of_the_lowest_loss():
    durations = [{"tokens": 100, "loss": 3.0}, {"tokens": 200, "loss": 2.52}, {"tokens": 400, "loss": 2.5}]
    assert best_tokens(durations, spread=0.05) == 200
    assert best_tokens(durations, spread=0.0) == 400
    assert best_tokens(durations, spread=1.0) == 100


def test_the_duration_cost_counts_the_shared_trunk_once():
    trunks = [{"tokens": 100, "flops": 1000.0}, {"tokens": 100, "flops": 1000.0}, {"tokens": 200, "flops": 2000.0}]
    durations = [{"trunk_tokens": t, "decay_tokens": t // 5, "decay_flops": t // 5 * 10.0} for t in (100, 200, 400)]
    cost = duration_cost({"trunks": trunks, "durations": durations})
    assert cost["tokens"] == 400 + 140 and cost["flops"] == 5400.0
    assert cost["independent_tokens"] == 700 + 140 and cost["independent_flops"] == 8400.0


def test_with_a_target_a_corpus_joins_when_it_helps_the_target_and_says_what_it_hurts():
    helps, hurts = {"verdict": "helps"}, {"verdict": "hurts"}
    kept, why = mixture_choice("man1", {"heldout/man": helps, "heldout/man1": hurts, "heldout/prose": hurts}, ["prose"], "man")
    assert kept and why == "it helps the target man's held-out loss (and hurts the lineage's held-out loss on prose by more than the spread)"
    kept, why = mixture_choice("man1", {"heldout/man": {"verdict": "unchanged"}, "heldout/man1": helps}, ["prose"], "man")
    assert not kept and why == "it leaves the target man's held-out loss unchanged"
