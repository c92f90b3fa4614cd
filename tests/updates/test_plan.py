"""`plan`'s cost model against numbers worked out by hand from recipes.md §3, the paper's 58%, replay,
a version's own config, and speeds measured in the store's runs."""

import json
import math

import pytest
import yaml
from transformers import LlamaConfig, LlamaForCausalLM

from renewlm.counts import parse_tokens
from renewlm.data.tokenizer import load_tokenizer
from renewlm.errors import ConfigError, StoreError
from renewlm.updates.plan import make_plan
from renewlm.versions import write_version

# The 1b preset at 128,256 ids, seq 2,048, by hand: per layer q 2048² + k, v 2048·512 each (8 KV heads
# of 64) + o 2048² + MLP 3·2048·8192 + 2 norms 2048 = 60,821,504; ×16 + final norm 2048 = 973,146,112;
# + the (tied) head 128,256·2048 = 262,668,288 -> N = 1,235,814,400; 6N = 7,414,886,400;
# + 12·16·2048·2048 = 805,306,368 -> 8,220,192,768 FLOPs per token.
FLOPS_1B = 8_220_192_768

# Cumulative tokens in units of T (A = 0.1, no replay), N = 1..6:
# PTFS = N(N+1)/2; CPT = N; path switching = 1.1·N.
RETRAIN = [1, 3, 6, 10, 15, 21]
CONTINUE = [1, 2, 3, 4, 5, 6]
SWITCH = [1.1, 2.2, 3.3, 4.4, 5.5, 6.6]
CONTINUE_RATIO = [1, 2 / 3, 1 / 2, 2 / 5, 1 / 3, 2 / 7]
SWITCH_RATIO = [1.1, 2.2 / 3, 3.3 / 6, 4.4 / 10, 5.5 / 15, 6.6 / 21]


@pytest.fixture
def empty(tmp_path):
    from renewlm.store import Store

    return Store(tmp_path / "store")


@pytest.mark.parametrize("n", range(1, 7))
def test_against_hand_computation(empty, n):
    t = 1e9
    plan = make_plan(empty, releases=n, tokens_per_release=t, decay_fraction=0.1, tokens_per_second=50_000)
    assert plan.model.flops_per_token == FLOPS_1B
    assert list(plan.tokens["retrain"]) == pytest.approx([i * t for i in range(1, n + 1)])
    assert list(plan.tokens["continue"]) == pytest.approx([t] * n)
    assert list(plan.tokens["switch"]) == pytest.approx([1.1 * t] * n)
    assert sum(plan.tokens["retrain"]) == pytest.approx(RETRAIN[n - 1] * t)
    assert sum(plan.tokens["continue"]) == pytest.approx(CONTINUE[n - 1] * t)
    assert sum(plan.tokens["switch"]) == pytest.approx(SWITCH[n - 1] * t)
    assert plan.ratios("continue") == pytest.approx(CONTINUE_RATIO[:n])
    assert plan.ratios("switch") == pytest.approx(SWITCH_RATIO[:n])
    assert plan.ratios("retrain") == pytest.approx([1.0] * n)
    assert sum(plan.flops("retrain")) == pytest.approx(RETRAIN[n - 1] * t * FLOPS_1B)
    # 1e9 tokens at 50,000 tokens/s = 20,000 s = 5.5556 h per T
    assert sum(plan.hours("switch")) == pytest.approx(SWITCH[n - 1] * 20_000 / 3600)


def test_averaged_releases_cost_their_trunk_alone(empty):
    # The trunk reads T/(1−F) per update after the first (replay 20%); an averaged release trains 0 tokens beyond it.
    plan = make_plan(empty, releases=3, tokens_per_release=100, replay=0.2, pretrain_tokens=1000)
    assert list(plan.tokens["average"]) == pytest.approx([1000, 125, 125])
    assert list(plan.tokens["switch"]) == pytest.approx([1000, 137.5, 137.5])
    assert plan.ratios("average")[-1] == pytest.approx(1250 / 3300)
    assert plan.to_dict()["paradigms"]["average"]["total_tokens"] == pytest.approx(1250)


def test_six_releases_in_flops_and_hours(empty):
    plan = make_plan(empty, releases=6, tokens_per_release=1e9, tokens_per_second=50_000)
    # 21 · 1e9 · 8,220,192,768 = 1.72624048128e20; 21e9 / 50,000 = 420,000 s = 116.67 h
    assert sum(plan.flops("retrain")) == pytest.approx(1.72624048128e20, rel=1e-12)
    assert sum(plan.hours("retrain")) == pytest.approx(116.6667, rel=1e-5)
    assert plan.to_dict()["paradigms"]["retrain"]["total_flops"] == pytest.approx(1.72624048128e20, rel=1e-12)


def test_four_releases_of_path_switching_cost_58_percent(empty):
    # Wang et al. 2024: four versions at 58% of PTFS. (1+α)·4 / (4·5/2) = 0.58 -> 1+α = 1.45 -> α = 0.45.
    plan = make_plan(empty, releases=4, tokens_per_release=1e10, decay_fraction=0.45)
    assert plan.ratios("switch")[-1] == pytest.approx(0.58)
    assert plan.ratios("continue")[-1] == pytest.approx(0.4)


def test_replay_makes_every_update_after_the_first_longer(empty):
    # T = 100, F = 0.2: an update trains on 100/0.8 = 125; release 1 on 100. Retraining: 100, 200, 300.
    plan = make_plan(empty, releases=3, tokens_per_release=100, decay_fraction=0.1, replay=0.2)
    assert list(plan.tokens["retrain"]) == pytest.approx([100, 200, 300])
    assert list(plan.tokens["continue"]) == pytest.approx([100, 125, 125])
    assert list(plan.tokens["switch"]) == pytest.approx([110, 137.5, 137.5])
    assert plan.ratios("continue")[-1] == pytest.approx(350 / 600)
    assert plan.ratios("switch")[-1] == pytest.approx(385 / 600)


def test_a_large_pretraining_then_small_releases(empty):
    # P = 1000 (release 1, the same run in every paradigm), T = 100, F = 0.2: an update trains 125, a
    # switch update 137.5 (its main path starts at release 2); retraining reads P + (i−1)·T.
    plan = make_plan(empty, releases=3, tokens_per_release=100, pretrain_tokens=1000, decay_fraction=0.1, replay=0.2)
    assert list(plan.tokens["retrain"]) == pytest.approx([1000, 1100, 1200])
    assert list(plan.tokens["continue"]) == pytest.approx([1000, 125, 125])
    assert list(plan.tokens["switch"]) == pytest.approx([1000, 137.5, 137.5])
    assert plan.ratios("continue") == pytest.approx([1, 1125 / 2100, 1250 / 3300])
    assert plan.ratios("switch")[-1] == pytest.approx(1275 / 3300)
    assert plan.to_dict()["pretrain_tokens"] == 1000
    # Without it release 1 is one release's T, and the ratios are those of equal releases.
    assert make_plan(empty, releases=3, tokens_per_release=100).ratios("continue")[-1] == pytest.approx(3 / 6)


def test_preset_with_its_own_vocabulary(empty):
    # tiny: d 128, 2 layers, FFN 384, tied; 1000 ids pad to 1024 rows. Per layer 4·128² + 3·128·384 + 256
    # = 213,248; ×2 + 128 = 426,624; + 1024·128 = 557,696; 6N = 3,346,176; + 12·2·128·64 = 196,608.
    plan = make_plan(empty, releases=1, tokens_per_release=1, model="tiny", vocab_size=1000, seq_len=64)
    assert plan.model.flops_per_token == 3_542_784
    assert plan.speed is None and plan.hours("retrain") is None


@pytest.fixture
def versioned(store):
    """Version v1: an untied Llama (d 64, 3 layers, 4 heads / 2 KV heads, FFN 160, 1,000 ids) trained at seq 32."""
    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    write_version(store, "v1", LlamaForCausalLM(config), load_tokenizer(store, "tok"), {"seq_len": 32})
    return store


def write_run(store, name, config: dict, speeds, extra_lines=()):
    folder = store.path("runs", name)
    folder.mkdir(parents=True)
    (folder / "run.yaml").write_text(yaml.safe_dump(config))
    lines = [json.dumps({"step": i + 1, "tokens": 100 * (i + 1), "loss": 3.0, "tokens_per_second": s}) for i, s in enumerate(speeds)]
    (folder / "metrics.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n")


def test_a_version_is_priced_from_its_own_config(versioned):
    # Per layer q 64² + k, v 64·32 each + o 64² + MLP 3·64·160 + norms 128 = 43,136; ×3 + 64 = 129,472;
    # + the untied head 1000·64 -> N = 193,472; 6N = 1,160,832; + 12·3·64·32 = 73,728 -> 1,234,560.
    plan = make_plan(versioned, releases=2, tokens_per_release=1000, model="v1")
    assert (plan.model.flops_per_token, plan.model.seq_len) == (1_234_560, 32)
    assert plan.model.description == "version v1"
    assert sum(plan.flops("retrain")) == pytest.approx(3000 * 1_234_560)
    # --seq-len overrides the recorded length: 12·3·64·64 = 147,456
    assert make_plan(versioned, releases=1, tokens_per_release=1, model="v1", seq_len=64).model.flops_per_token == 1_160_832 + 147_456


def test_measured_speed_comes_from_the_runs_of_that_model(versioned):
    store = versioned
    write_run(store, "v1", {"name": "v1", "preset": "tiny"}, [100, 500])
    write_run(store, "v2", {"name": "v2", "parent": "v1"}, [200, 300, 250],
              extra_lines=[json.dumps({"step": 3, "eval": {"a": 2.0}}), '{"step": 4, "tokens_per'])
    write_run(store, "other", {"name": "other", "preset": "small"}, [9999])
    plan = make_plan(store, releases=2, tokens_per_release=1e6, model="v1")
    # v1's own run and the update from it: median of 100, 500, 200, 300, 250 = 250
    assert plan.speed.tokens_per_second == 250
    assert plan.speed.source == "measured: median of 5 steps in runs v1, v2"
    assert plan.hours("continue") == pytest.approx([1e6 / 250 / 3600] * 2)
    # a preset: the runs that pre-trained it
    assert make_plan(store, releases=1, tokens_per_release=1, model="tiny").speed.tokens_per_second == 300
    assert make_plan(store, releases=1, tokens_per_release=1, model="small").speed.tokens_per_second == 9999
    assert make_plan(store, releases=1, tokens_per_release=1, model="125m").speed is None
    given = make_plan(store, releases=1, tokens_per_release=1, model="v1", tokens_per_second=10)
    assert (given.speed.tokens_per_second, given.speed.source) == (10, "given")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"releases": 0}, "--releases 0"),
        ({"tokens_per_release": 0}, "--tokens-per-release"),
        ({"tokens_per_release": -5}, "--tokens-per-release"),
        ({"decay_fraction": 0}, "--decay-fraction"),
        ({"decay_fraction": 1.5}, "--decay-fraction"),
        ({"replay": 1}, "--replay"),
        ({"replay": -0.1}, "--replay"),
        ({"tokens_per_second": 0}, "--tokens-per-second"),
        ({"tokens_per_second": math.inf}, "--tokens-per-second"),
        ({"model": "nope"}, "neither a preset"),
        ({"vocab_size": 0}, "--vocab-size"),
        ({"seq_len": -1}, "--seq-len"),
        ({"releases": 1001}, "--releases 1,001 is more than the 1,000 a plan lists"),
        ({"tokens_per_release": 2e15}, "--tokens-per-release 2e15 is above the bound of 1e15 tokens"),
        ({"pretrain_tokens": 0}, "--pretrain-tokens 0 must be positive"),
        ({"pretrain_tokens": 1e18}, "--pretrain-tokens 1e18 is above the bound of 1e15 tokens"),
        ({"model": "tiny", "seq_len": 10**11}, "--seq-len 100,000,000,000 is above the bound of 1,048,576 tokens per sequence"),
    ],
)
def test_bad_input_is_one_sentence(empty, kwargs, words):
    args = {"releases": 2, "tokens_per_release": 1e9, **kwargs}
    with pytest.raises(ConfigError, match=words) as e:
        make_plan(empty, **args)
    assert "\n" not in str(e.value)
    assert not empty.root.exists()


def test_a_sequence_longer_than_the_versions_positions_is_refused(versioned):
    # v1's config has 2,048 positions (LlamaConfig's default): FLOPs at 4,096 would price a model that cannot run.
    with pytest.raises(ConfigError, match="--seq-len 4,096 is longer than the 2,048 positions version 'v1' supports"):
        make_plan(versioned, releases=1, tokens_per_release=1, model="v1", seq_len=4096)
    assert make_plan(versioned, releases=1, tokens_per_release=1, model="v1", seq_len=2048).model.seq_len == 2048


def test_vocab_size_is_refused_for_a_version(versioned):
    with pytest.raises(ConfigError, match="has its own vocabulary"):
        make_plan(versioned, releases=1, tokens_per_release=1, model="v1", vocab_size=5000)


def test_unreadable_version_config(versioned):
    (versioned.path("versions", "v1") / "config.json").write_text("{not json")
    with pytest.raises(StoreError, match="cannot be read"):
        make_plan(versioned, releases=1, tokens_per_release=1, model="v1")


@pytest.mark.parametrize("text, value", [("10B", 1e10), ("500M", 5e8), ("1e10", 1e10), ("2.5T", 2.5e12), ("100k", 1e5), ("1_000", 1000), ("7", 7)])
def test_token_counts(text, value):
    assert parse_tokens(text) == value


@pytest.mark.parametrize("text", ["ten", "1.5.2B", "", "inf", "nan", "5X"])
def test_token_counts_refused(text):
    with pytest.raises(ConfigError, match="is not a token count"):
        parse_tokens(text)
