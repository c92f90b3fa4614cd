"""What a sweep runs: its settings, checked before anything is written, and the run config of every point.

A sweep of corpus C from version V (the Databricks recipe, recipes.md §4) is three kinds of ordinary runs:
1. the LR grid: one `continue` update from V per peak LR (cosine re-warm + re-decay, optional replay),
   each `tokens` long;
2. the repeats: the best LR's point again with other data-order seeds (the noise);
3. the duration sweep at the best LR, the way WSD allows (Hägele et al. 2024, §3): one constant-LR run
   cut into trunk segments that end at each duration (each segment continues the previous one's weights,
   AdamW state and data stream), and a short decay branched off each segment's end. K durations cost
   one run of the longest plus K short decays, instead of K runs.
Every point is named `SWEEP.CORPUS.…`, so the versions of a sweep sort together in the store.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from renewlm.counts import DEFAULT_EVAL_TOKENS
from renewlm.data.corpus import Corpus
from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.updates.request import UpdateRequest, checked, decay_share, replay_share
from renewlm.updates.switch import branch_config
from renewlm.updates.update import update_config
from renewlm.versions import read_version

DEFAULT_LRS = (1e-5, 3e-5, 1e-4, 3e-4)
DEFAULT_DURATION_MULTIPLES = (1, 2, 4)  # durations default to the grid's budget × these
# Databricks' proxy runs are 1-10B tokens (recipes.md §4): the short end by default.
DEFAULT_TOKENS = 1_000_000_000
# Hägele et al. 2024: a 10-20% cooldown matches cosine; the longer end by default, as these are short runs.
DEFAULT_DECAY_FRACTION = 0.2


@dataclass(frozen=True)
class SweepSettings:
    """Everything that defines a sweep; recorded in sweep.json and compared on every re-run."""

    parent: str
    data: list[str]
    lrs: list[float] = field(default_factory=lambda: list(DEFAULT_LRS))
    tokens: int = DEFAULT_TOKENS
    durations: list[int] = field(default_factory=list)
    replay: float = 0.0
    seed_repeats: int = 1
    decay_fraction: float = DEFAULT_DECAY_FRACTION
    tasks: list[str] = field(default_factory=list)
    include_paths: list[str] = field(default_factory=list)
    limit: int | None = None
    seed: int = 0
    eval_tokens: int = DEFAULT_EVAL_TOKENS
    target: str | None = None  # a corpus whose held-out loss makes the choices (default: each candidate's own)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Point:
    """One run of a sweep: the version it writes and its config."""

    stage: str  # "lr" | "repeat" | "trunk" | "decay"
    corpus: str
    cfg: RunConfig

    @property
    def name(self) -> str:
        return self.cfg.name


def lr_label(lr: float) -> str:
    return f"{lr:g}"


def check_settings(store: Store, name: str, s: SweepSettings) -> None:
    """Refuse bad input with one sentence, before anything is written or trained."""
    store.path("sweeps", name)  # the sweep's name (characters, length)
    if not s.data:
        raise ConfigError("a sweep needs at least one candidate corpus; give --data NAME (repeat for several)")
    twice = sorted({c for c in s.data if s.data.count(c) > 1})
    if twice:
        raise ConfigError(f"--data names corpus {twice[0]!r} twice; give each candidate corpus once")
    if not s.lrs:
        raise ConfigError("the LR grid is empty; give --lrs as comma-separated positive numbers, e.g. --lrs 1e-4,3e-4")
    bad = [lr for lr in s.lrs if not (math.isfinite(lr) and lr > 0)]
    if bad:
        raise ConfigError(f"--lrs {bad[0]:g} is not a positive learning rate; give positive numbers, e.g. --lrs 1e-4,3e-4")
    labels = [lr_label(lr) for lr in s.lrs]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--lrs {','.join(labels)} names one learning rate twice; give each once")
    if s.tokens < 1:
        raise ConfigError(f"--tokens {s.tokens} must be a positive number of tokens, e.g. --tokens 1e9")
    if not s.durations:
        raise ConfigError("the duration grid is empty; give --durations as increasing token counts, e.g. --durations 1e9,2e9,4e9")
    if any(t < 1 for t in s.durations):
        raise ConfigError(f"--durations {min(s.durations)} must be positive token counts, e.g. --durations 1e9,2e9,4e9")
    if any(b <= a for a, b in zip(s.durations, s.durations[1:])):
        raise ConfigError(f"--durations {','.join(map(str, s.durations))} must increase strictly; list them shortest first")
    checked(replay_share, s.replay)
    if s.seed_repeats < 0:
        raise ConfigError(f"--seed-repeats {s.seed_repeats} must be 0 or more (extra seeds of the best point)")
    checked(decay_share, s.decay_fraction)
    if s.eval_tokens < 1 or (s.limit is not None and s.limit < 1):
        raise ConfigError("--eval-tokens and --limit must be at least 1")
    if not store.exists("versions", s.parent):
        have = ", ".join(store.names("versions")) or "none"
        raise ConfigError(f"--from {s.parent!r} is not a version in the store {store.root} (it has: {have}); check the name")
    parent = read_version(store, s.parent)
    want = parent.tokenizer_fingerprint
    for flag, corpus in [*(("--data", c) for c in s.data), *([("--target", s.target)] if s.target else [])]:
        if not store.exists("corpora", corpus):
            have = ", ".join(store.names("corpora")) or "none"
            raise ConfigError(f"{flag} {corpus!r} is not a corpus in the store (it has: {have}); prepare it first")
        c = Corpus.open(store, corpus, verify=False)
        if want and c.tokenizer_fingerprint != want:
            raise ConfigError(
                f"corpus {corpus!r} was prepared with another tokenizer than version {s.parent!r}'s "
                f"(fingerprint {c.tokenizer_fingerprint[:12]} vs {want[:12]}); prepare it again with --tokenizer {s.parent}"
            )
        if c.val.num_tokens == 0:
            raise ConfigError(
                f"corpus {corpus!r} has no held-out split, so the sweep cannot measure its loss; "
                f"prepare it again with --overwrite and a --val-fraction above 0 (a corpus of one document: "
                f"--min-heldout-tokens 10000)"
            )
    longest = max(s.lrs, key=lambda lr: len(lr_label(lr)))
    for corpus in s.data:  # every name the sweep will write is a valid store name (length included)
        for p in [*lr_points(store, name, s, corpus), *repeat_points(store, name, s, corpus, longest),
                  *duration_points(store, name, s, corpus, longest)]:
            store.path("versions", p.name)


def _sweep_run(store: Store, s: SweepSettings, run_name: str, corpus: str, lr: float, *, kind: str = "release", **length) -> RunConfig:
    """A point's run: `renewlm update RUN --from PARENT --data CORPUS --lr LR --replay F` and the point's length and seed."""
    request = UpdateRequest(name=run_name, parent=s.parent, data=[corpus], replay=s.replay, lr=lr, **length)
    cfg = update_config(store, request, kind=kind)
    return validate_run({**cfg.model_dump(mode="json"), "eval_tokens": s.eval_tokens}, f"sweep run {run_name}")


def lr_points(store: Store, name: str, s: SweepSettings, corpus: str) -> list[Point]:
    """Stage 1: one continue update per peak LR, `tokens` long."""
    return [
        Point("lr", corpus, _sweep_run(store, s, f"{name}.{corpus}.lr{lr_label(lr)}", corpus, lr, tokens=s.tokens, seed=s.seed))
        for lr in s.lrs
    ]


def repeat_points(store: Store, name: str, s: SweepSettings, corpus: str, best_lr: float) -> list[Point]:
    """The best LR's point with seeds seed+1 … seed+K: the same run on another data order."""
    stem = f"{name}.{corpus}.lr{lr_label(best_lr)}"
    return [
        Point("repeat", corpus, _sweep_run(store, s, f"{stem}.seed{seed}", corpus, best_lr, tokens=s.tokens, seed=seed))
        for seed in range(s.seed + 1, s.seed + 1 + s.seed_repeats)
    ]


def duration_steps(s: SweepSettings, batch_tokens: int) -> list[int]:
    """Each duration in whole optimizer steps (a run reads whole batches)."""
    steps = [t // batch_tokens for t in s.durations]
    if steps[0] < 1:
        raise ConfigError(f"--durations {s.durations[0]} is shorter than one batch of {batch_tokens:,} tokens; give longer durations")
    same = [t for t, a, b in zip(s.durations[1:], steps, steps[1:]) if a == b]
    if same:
        raise ConfigError(
            f"--durations {same[0]} rounds to the same number of {batch_tokens:,}-token batches as the duration before it; "
            f"space the durations at least one batch apart"
        )
    return steps


def duration_points(store: Store, name: str, s: SweepSettings, corpus: str, best_lr: float) -> list[Point]:
    """Stage 2, in the order they can run: trunk segment 1, its decay, segment 2, its decay, ...

    Segment k reads samples [steps_{k-1}·B, steps_k·B) of the same stream (same mixture and seed,
    `data_offset`), so the segments together are one constant-LR run. The decay off segment k reads on
    from there too (a WSD cooldown continues the stream) over `decay_fraction` of duration k."""
    stem = f"{name}.{corpus}.lr{lr_label(best_lr)}"
    first = _sweep_run(store, s, "unnamed", corpus, best_lr, kind="trunk", steps=1, seed=s.seed)
    base = first.model_dump(mode="json")
    points, done, parent = [], 0, s.parent
    for k, steps in enumerate(duration_steps(s, first.batch_tokens)):
        trunk_name = f"{stem}.trunk{steps * first.batch_tokens}"
        run = {**base, "name": trunk_name, "parent": parent, "steps": steps - done, "data_offset": done * first.batch_samples}
        if k:  # a later segment continues the trunk: its AdamW state, no re-warm, the LR held
            run.update(load_optimizer=True, schedule={"name": "constant", "lr": best_lr})
        trunk = validate_run(run, f"sweep trunk {trunk_name}")
        points.append(Point("trunk", corpus, trunk))
        # branch_config sizes the decay by the trunk's steps: hand it the whole duration, not the segment.
        decay = branch_config(f"{stem}.decay{steps * first.batch_tokens}", trunk.model_copy(update={"steps": steps}),
                              s.decay_fraction).model_dump(mode="json")
        decay.update(seed=s.seed, data_offset=steps * first.batch_samples)
        points.append(Point("decay", corpus, validate_run(decay, f"sweep decay {decay['name']}")))
        done, parent = steps, trunk_name
    return points
