import pytest

from renewlm.config import parse_yaml
from renewlm.data.mixture import MixtureSpec, load_mixture, single, validate_mixture
from renewlm.errors import ConfigError


def spec(text: str) -> MixtureSpec:
    return validate_mixture(parse_yaml(text, "test.yaml"), "test.yaml")


def test_phase_weights_fold_in_compute_equivalent_replay():
    m = spec(
        """
phases:
  - corpora: {web: 3, books: 1}
    end: 0.8
  - corpora: {qa: 1}
replay:
  fraction: 0.2
  corpora: {old_a: 1, old_b: 3}
"""
    )
    first, second = m.phase_weights()
    assert first == pytest.approx({"web": 0.6, "books": 0.2, "old_a": 0.05, "old_b": 0.15})
    assert second == pytest.approx({"qa": 0.8, "old_a": 0.05, "old_b": 0.15})
    assert m.corpus_names() == ["web", "books", "qa", "old_a", "old_b"]
    assert m.phase_ends() == [0.8, 1.0]


def test_replay_of_a_corpus_the_phase_also_reads_adds_up():
    m = single({"new": 1.0, "old": 1.0}, replay={"old": 1.0}, replay_fraction=0.5)
    assert m.phase_weights()[0] == pytest.approx({"new": 0.25, "old": 0.75})


def test_phase_may_end_at_a_schedule_event():
    m = spec("phases:\n  - {corpora: {general: 1}, end: switch}\n  - {corpora: {qa: 1}, end: 1}\n")
    assert m.phase_ends({"switch": 0.711}) == [0.711, 1.0]
    with pytest.raises(ConfigError, match="does not have"):
        m.phase_ends({"warmup_end": 0.01})


def test_event_after_a_later_fixed_end_is_refused():
    m = spec("phases:\n  - {corpora: {a: 1}, end: switch}\n  - {corpora: {b: 1}, end: 0.5}\n  - {corpora: {c: 1}}\n")
    with pytest.raises(ConfigError, match="rise strictly"):
        m.phase_ends({"switch": 0.7})


@pytest.mark.parametrize(
    "text, message",
    [
        ("phases:\n  - {corpora: {a: -1}}\n", "greater than or equal to 0"),
        ("phases:\n  - {corpora: {a: 0, b: 0}}\n", "phases.0.corpora: the weights sum to 0"),
        ("phases:\n  - {corpora: {a: 1}, end: 0.5}\n", "not 1"),
        ("phases:\n  - {corpora: {a: 1}, end: 0.6}\n  - {corpora: {b: 1}, end: 0.4}\n  - {corpora: {c: 1}}\n", "rise strictly"),
        ("phases:\n  - {corpora: {a: 1}, end: 1.5}\n", "end"),
        ("phases: []\n", "at least 1"),
        ("phases:\n  - {corpora: {a: 1}}\nreplay: {fraction: 1.0, corpora: {b: 1}}\n", "less than 1"),
        ("phases:\n  - {corpora: {a: 1}}\nreplay: {fraction: 0.1, corpora: {b: 0}}\n", "replay.corpora: the weights sum to 0"),
        ("phases:\n  - {corpora: {a: 1}, weight: 3}\n", "unknown field"),
    ],
)
def test_bad_mixtures_are_refused_with_the_field_named(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        spec(text)
    assert "test.yaml" in str(info.value)


def test_load_mixture_from_file(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("phases:\n  - corpora: {prose: 0.75, code: 0.25}\n")
    assert load_mixture(path).phase_weights()[0] == {"prose": 0.75, "code": 0.25}
    with pytest.raises(ConfigError, match="does not exist"):
        load_mixture(tmp_path / "missing.yaml")


def test_shares_are_exact_fractions_of_the_written_decimals():
    from fractions import Fraction

    m = single({"a": 0.7, "b": 0.2, "c": 0.1}, replay={"old": 1.0}, replay_fraction=0.05)
    shares = m.phase_fractions()[0]
    assert shares == {"a": Fraction(133, 200), "b": Fraction(19, 100), "c": Fraction(19, 200), "old": Fraction(1, 20)}
    assert sum(shares.values()) == 1


@pytest.mark.parametrize("bad", ["{a: .inf}", "{a: .nan}", "{a: 1e308, b: .inf}"])
def test_non_finite_weights_are_refused(bad):
    with pytest.raises(ConfigError, match="finite"):
        spec(f"phases:\n  - corpora: {bad}\n")
