"""`plan`: what a series of releases costs under each update paradigm, before any compute is spent.

N releases, each adding T new tokens. Per release, the tokens each paradigm trains on:
- retrain: pre-train from scratch on all the data so far (PTFS): i·T at release i.
- continue: release 1 is pre-training on T; every later release continues the last one on its new data.
- switch: a main path (trunk) at high LR continues over each release's data, and each release is a
  branch off it with a complete, fast decay over A × the update's tokens.
- average: path switching whose releases are the trunk's last steps averaged (`--release average`):
  the trunk's tokens alone, counted once, and 0 training tokens for the release.
A pre-training of P tokens (`pretrain_tokens`) makes release 1 that one run, shared by all three, and
release i of retrain P + (i−1)·T; switch then starts its main path at release 2, as an update from a
release with no trunk does.
An update that replays a share F of every batch (compute-equivalent replay, Ibrahim et al. 2024) must
train on T/(1−F) tokens to see all T new ones. Release 1 has no old data to replay, and retraining
sees every release's data once, so neither grows with F.
With F = 0 this is path switching's cost model (Wang et al. 2024, as our arithmetic):
PTFS = T·N(N+1)/2, CPT = N·T, path switching = (1+A)·N·T. docs/plan.md has the details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from renewlm.config import MAX_SEQ_LEN, MAX_TOKENS
from renewlm.errors import ConfigError, StoreError
from renewlm.model.flops import flops_per_token
from renewlm.model.presets import DEFAULT_SEQ_LEN, PRESETS, padded_vocab, preset_flops_per_token
from renewlm.store import Store, write_png
from renewlm.train.run_record import Speed, measured_speed, read_run_config
from renewlm.updates.request import checked, decay_share, known_paradigm, replay_share
from renewlm.versions import PARADIGMS, read_version

# The order of the plan's table, JSON and chart: the baseline first, then the updates measured against it, then
# path switching with averaged releases (a kind of release, not a paradigm of its own: `--release average`).
AVERAGE = "average"
SHOWN = (*sorted(PARADIGMS, key=lambda p: p != "retrain"), AVERAGE)
DEFAULT_PRESET = "1b"
# Llama 3's vocabulary, the one the 1b preset (Llama-3.2-1B's shape) is meant for.
DEFAULT_VOCAB_SIZE = 128_256
# Wang et al. 2024 via MiniCPM: a decay over 10% of the update's tokens is enough.
DEFAULT_DECAY_FRACTION = 0.1
# A release a month for 83 years; the plan lists every release, so it stays readable and instant.
MAX_RELEASES = 1000
@dataclass(frozen=True)
class ModelCost:
    """The model a plan prices: a readable description and its training FLOPs per token."""

    description: str
    flops_per_token: float
    seq_len: int


@dataclass(frozen=True)
class Plan:
    releases: int
    tokens_per_release: float
    decay_fraction: float
    replay: float
    model: ModelCost
    speed: Speed | None
    tokens: dict[str, tuple[float, ...]] = field(default_factory=dict)
    pretrain_tokens: float | None = None  # release 1's tokens when it is one pre-training of its own size

    def flops(self, paradigm: str) -> list[float]:
        return [t * self.model.flops_per_token for t in self.tokens[paradigm]]

    def hours(self, paradigm: str) -> list[float] | None:
        if self.speed is None:
            return None
        return [t / self.speed.tokens_per_second / 3600 for t in self.tokens[paradigm]]

    def ratios(self, paradigm: str) -> list[float]:
        """Cumulative cost through each release over retraining's through the same release."""
        return [a / b for a, b in zip(cumulative(self.tokens[paradigm]), cumulative(self.tokens["retrain"]))]

    def to_dict(self) -> dict:
        out = {
            "releases": self.releases,
            "tokens_per_release": self.tokens_per_release,
            "pretrain_tokens": self.pretrain_tokens,
            "decay_fraction": self.decay_fraction,
            "replay": self.replay,
            "model": self.model.description,
            "seq_len": self.model.seq_len,
            "flops_per_token": self.model.flops_per_token,
            "tokens_per_second": self.speed.tokens_per_second if self.speed else None,
            "speed_source": self.speed.source if self.speed else None,
            "paradigms": {},
        }
        for p in SHOWN:
            hours = self.hours(p)
            out["paradigms"][p] = {
                "tokens": list(self.tokens[p]),
                "flops": self.flops(p),
                "hours": hours,
                "cumulative_ratio": self.ratios(p),
                "total_tokens": sum(self.tokens[p]),
                "total_flops": sum(self.flops(p)),
                "total_hours": sum(hours) if hours is not None else None,
            }
        return out


def cumulative(values) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def format_count(x: float) -> str:
    """A count for people: 10B, 14.5B, 1.05T, 950M, 7."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return _short(x / scale) + suffix
    return _short(x)


def _short(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def release_tokens(
    paradigm: str, release: int, tokens_per_release: float, decay_fraction: float, replay: float,
    pretrain_tokens: float | None = None,
) -> float:
    """Tokens trained for release `release` (1-based) under `paradigm` (or `average`: switch, averaged releases)."""
    if paradigm != AVERAGE:
        checked(known_paradigm, paradigm)
    if pretrain_tokens is not None and release == 1:  # one pre-training, the same run in every paradigm
        return pretrain_tokens
    first = tokens_per_release if pretrain_tokens is None else pretrain_tokens
    if paradigm == "retrain":
        return first + (release - 1) * tokens_per_release
    update = tokens_per_release if release == 1 else tokens_per_release / (1 - replay)
    if paradigm in ("continue", AVERAGE):  # an averaged release trains nothing beyond its trunk's update
        return update
    return (1 + decay_fraction) * update  # switch: the trunk over the update, then the branch's decay over A of it


def check_inputs(
    releases: int, tokens_per_release: float, decay_fraction: float, replay: float, tokens_per_second: float | None,
    pretrain_tokens: float | None = None,
) -> None:
    """One sentence for the first value out of range; checked before anything is read or written."""
    if releases < 1:
        raise ConfigError(f"--releases {releases} plans no release; give 1 or more")
    if releases > MAX_RELEASES:  # a row per release and paradigm: a billion rows would never print
        raise ConfigError(
            f"--releases {releases:,} is more than the {MAX_RELEASES:,} a plan lists (one row each); give at most "
            f"{MAX_RELEASES:,} (past a few, the shares of retraining fall as 2/(N+1) and 2(1+A)/(N+1))"
        )
    for option, tokens in (("--tokens-per-release", tokens_per_release), ("--pretrain-tokens", pretrain_tokens)):
        if tokens is None:
            continue
        if not 0 < tokens < math.inf:
            raise ConfigError(f"{option} {tokens:g} must be positive (e.g. 10B or 1e10)")
        if tokens > MAX_TOKENS:
            raise ConfigError(
                f"{option} {_exp(tokens)} is above the bound of {_exp(MAX_TOKENS)} tokens for one run (66 times Llama 3's 15T); check the number"
            )
    checked(decay_share, decay_fraction)
    checked(replay_share, replay)
    if tokens_per_second is not None and not 0 < tokens_per_second < math.inf:
        raise ConfigError(f"--tokens-per-second {tokens_per_second:g} must be positive, or leave it out to use a measured figure")


def _exp(x: float) -> str:
    return f"{x:.3g}".replace("e+", "e")


def model_cost(store: Store, model: str | None, *, vocab_size: int | None = None, seq_len: int | None = None) -> ModelCost:
    """FLOPs per token of a version in the store (its own config) or of a preset at a vocabulary size.

    A version named like a preset is the version: the store is what the user built.
    """
    if seq_len is not None and seq_len <= 0:
        raise ConfigError(f"--seq-len {seq_len} must be positive")
    if vocab_size is not None and vocab_size <= 0:
        raise ConfigError(f"--vocab-size {vocab_size} must be positive")
    model = model or DEFAULT_PRESET
    if store.exists("versions", model):
        if vocab_size is not None:
            raise ConfigError(f"--vocab-size applies to a preset; version {model!r} has its own vocabulary, so leave it out")
        from renewlm.model.load import max_positions  # torch: a version's config is read by transformers

        config = _version_config(store, model)
        positions = max_positions(config)
        seq = seq_len or _version_seq_len(store, model) or min(DEFAULT_SEQ_LEN, positions or DEFAULT_SEQ_LEN)
        if positions and seq > positions:
            raise ConfigError(f"--seq-len {seq:,} is longer than the {positions:,} positions version {model!r} supports; give at most {positions:,}")
        return ModelCost(f"version {model}", _flops(config, seq, f"version {model!r}"), seq)
    if model in PRESETS:
        if seq_len is not None and seq_len > MAX_SEQ_LEN:  # a preset is built with as many positions as its run's sequence
            raise ConfigError(f"--seq-len {seq_len:,} is above the bound of {MAX_SEQ_LEN:,} tokens per sequence; check the number")
        vocab = vocab_size or DEFAULT_VOCAB_SIZE
        seq = seq_len or DEFAULT_SEQ_LEN
        rows = padded_vocab(vocab)
        padded = f" (padded to {rows:,} rows)" if rows != vocab else ""
        return ModelCost(f"preset {model}, vocabulary {vocab:,}{padded}", preset_flops_per_token(model, vocab, seq), seq)
    raise ConfigError(
        f"--model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a version in the store {store.root}; "
        f"check the name or pass --store"
    )


def _version_config(store: Store, name: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(store.path("versions", name))
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"the model config of version {name!r} cannot be read ({e}); import the version again") from None


def _version_seq_len(store: Store, name: str) -> int | None:
    if not (store.path("versions", name) / "version.json").is_file():
        return None  # an imported folder without a record: the default sequence length
    return read_version(store, name).seq_len


def _flops(config, seq_len: int, what: str) -> float:
    try:
        return flops_per_token(config, seq_len)
    except (ValueError, KeyError) as e:  # an architecture transformers cannot build without its own code
        raise StoreError(f"the FLOPs per token of {what} cannot be computed from its config ({e})") from None


def model_speed(store: Store, model: str | None) -> Speed | None:
    """How fast `model` trains, by `measured_speed`'s rule, over the store's runs of it.

    A version's runs are the run that wrote it and the runs that updated from it (same model); a
    preset's are the runs that pre-trained it. None when the store holds no such run.
    """
    model = model or DEFAULT_PRESET
    if store.exists("versions", model):
        return measured_speed(store, lambda folder: folder.name == model or read_run_config(folder).get("parent") == model)
    return measured_speed(store, lambda folder: read_run_config(folder).get("preset") == model)


def make_plan(
    store: Store,
    *,
    releases: int,
    tokens_per_release: float,
    model: str | None = None,
    vocab_size: int | None = None,
    seq_len: int | None = None,
    decay_fraction: float = DEFAULT_DECAY_FRACTION,
    replay: float = 0.0,
    tokens_per_second: float | None = None,
    pretrain_tokens: float | None = None,
) -> Plan:
    """The plan for N releases: every input checked first, then the model priced, then the speed found."""
    check_inputs(releases, tokens_per_release, decay_fraction, replay, tokens_per_second, pretrain_tokens)
    cost = model_cost(store, model, vocab_size=vocab_size, seq_len=seq_len)
    speed = Speed(tokens_per_second, "given") if tokens_per_second is not None else model_speed(store, model)
    tokens = {
        p: tuple(release_tokens(p, i, tokens_per_release, decay_fraction, replay, pretrain_tokens) for i in range(1, releases + 1))
        for p in SHOWN
    }
    return Plan(releases, tokens_per_release, decay_fraction, replay, cost, speed, tokens, pretrain_tokens)


def plot_plan(plan: Plan, output: Path) -> Path:
    """Cumulative FLOPs against the release, one line per paradigm, each point's ratio to retraining."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = list(range(1, plan.releases + 1))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for paradigm in SHOWN:
        ys = cumulative(plan.flops(paradigm))
        (line,) = ax.plot(xs, ys, marker="o", linestyle="--" if paradigm == AVERAGE else "-", label=paradigm)
        if paradigm in ("retrain", AVERAGE):  # average's points are continue's: its ratios are in the table
            continue
        # continue runs below switch: its labels go under its points so the two never overlap
        below = paradigm == "continue"
        for x, y, ratio in zip(xs, ys, plan.ratios(paradigm)):
            ax.annotate(f"{ratio:.0%}", (x, y), textcoords="offset points", xytext=(0, -8 if below else 6), ha="center",
                        va="top" if below else "bottom", fontsize=8, color=line.get_color())
    ax.set_xlabel("release")
    ax.set_ylabel("cumulative training FLOPs")
    ax.set_xticks(xs)
    top = max(cumulative(plan.flops("retrain"))[-1], cumulative(plan.flops("switch"))[-1])
    ax.set_ylim(-0.08 * top, 1.1 * top)  # room for the labels under continue's first point
    shape = f"{plan.releases} releases of {format_count(plan.tokens_per_release)} tokens"
    if plan.pretrain_tokens is not None:
        shape = f"{plan.releases} releases: a pre-training of {format_count(plan.pretrain_tokens)}, then {format_count(plan.tokens_per_release)} tokens each"
    ax.set_title(f"{plan.model.description}: {shape} (% = of retraining so far)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return write_png(fig, output)
