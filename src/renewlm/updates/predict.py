"""An update's held-out losses, predicted before it runs, from the parent's logged curve and short probes.

1. The loss law (loss_law.py) is fitted to the parent's own held-out curve (its lineage's history, one clock):
   how the loss answers the LR, apart from any change of data.
2. A probe per candidate: the update itself (same data, replay share, peak LR, seed), shortened to its share
   of the probe budget (all probes together: `PROBE_SHARE` of one update's tokens) at its peak LR held, then
   decayed to its floor over the last `PROBE_DECAY` of its steps (where the update decays), its held-out loss
   on every corpus logged `PROBE_EVALS` times. A probe is a run and a version in the store, named after what it
   measured (`PARENT.probe-HASH`), so the next prediction reuses it.
3. Per corpus, the update's law (`UpdateLaw`: the parent's exponent; a level, a scale and an annealing
   coefficient of its own, the last read off the probe's decay) is fitted to the probe's curve after the
   optimizer's restart; the candidate's own schedule, run through it, gives its predicted loss at every step,
   and at its end.

`predict_request` does it for `renewlm update --predict` and `--replay auto`: one candidate (the request as it
is) or one per share of `AUTO_REPLAYS`, the smallest share whose predicted forgetting is within the budget
chosen, and its run returned with the prediction its version keeps.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.updates.history import History, read_history
from renewlm.updates.loss_law import AnnealingLaw, FitError, UpdateLaw, fit, fit_update
from renewlm.updates.request import UpdateRequest, parse_data
from renewlm.updates.update import update_config
from renewlm.versions.record import PredictionRecord

PROBE_SHARE = 0.10  # of one update's tokens, every probe together
PROBE_EVALS = 8  # held-out evaluations per probe, after its step 0
PROBE_DECAY = 1 / 3  # of a probe's steps: its decay to the update's floor, where each corpus's annealing gain is measured
PROBE_SUFFIX = ".probe-"
AUTO_REPLAYS = (0.0, 0.05, 0.25, 0.5)  # the shares `--replay auto` predicts: the grid, none to half of every batch


@dataclass
class Prediction:
    """One candidate's predicted held-out loss at its end, per corpus, and what it was predicted from."""

    candidate: str
    steps: int
    probe: str
    start: dict[str, float]  # the parent's loss on each corpus (the probe's step 0)
    final: dict[str, float]  # predicted, at the candidate's last step
    laws: dict[str, dict] = field(default_factory=dict)  # per corpus: the fitted update's law and its residual
    curves: dict[str, list[float]] = field(default_factory=dict)  # per corpus: predicted, after each of the update's steps
    probed: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # per corpus: the probe's (step, loss)

    def change(self) -> dict[str, float]:
        """Predicted minus the parent's loss: a rise on an old corpus is forgetting."""
        return {c: self.final[c] - self.start[c] for c in self.final}

    def forgetting(self, new: set[str]) -> dict[str, float]:
        """The predicted change on each corpus that is not the update's new data."""
        return {c: d for c, d in self.change().items() if c not in new}


def parent_law(store: Store, parent: str) -> tuple[AnnealingLaw, History]:
    """The law fitted to the parent's held-out curve on the corpus it has most points of (its own data)."""
    history = read_history(store, parent)
    if not history.points:
        raise FitError(f"{parent} logged no held-out loss while it trained; train it with eval_every set, "
                       "or predict from probe runs only")
    corpus = max(history.points, key=lambda c: len(history.points[c]))
    steps, losses = history.curve(corpus)
    law = fit(steps, losses, history.lrs, warmup_steps=history.warmup_steps, what=f"{parent}'s held-out curve on {corpus}")
    return law, history


def probe_steps(update: RunConfig, candidates: int) -> int:
    """Each probe's steps: its share of the budget, at least one per evaluation; FitError if the budget is too small."""
    steps = int(PROBE_SHARE * update.total_steps / candidates)
    if steps < PROBE_EVALS:
        raise FitError(f"probes of {candidates} candidate(s) within {PROBE_SHARE:.0%} of a {update.total_steps}-step update get "
                       f"{steps} step(s) each, fewer than the {PROBE_EVALS} evaluations a fit needs; "
                       "predict fewer candidates at once, or a longer update")
    return steps


def probe_config(update: RunConfig, steps: int) -> RunConfig:
    """The probe of `update`: its run, `steps` long at its peak LR held and, where the update decays, decayed to
    the update's floor over the last `PROBE_DECAY` of them; evaluated `PROBE_EVALS` times."""
    peak, floor = update.schedule.peak, update.schedule.floor
    schedule = {"name": "constant", "lr": peak} if floor >= peak else {
        "name": "wsd", "peak_lr": peak, "min_lr": floor, "warmup_fraction": 0.0, "decay_fraction": PROBE_DECAY, "decay_shape": "linear"}
    run = {
        **update.model_dump(mode="json"), "steps": steps, "tokens": None, "schedule": schedule,
        "eval_every": max(1, steps // PROBE_EVALS), "evaluations": [], "average": None, "ema": None, "kind": "release",
        "generation_flops": 0.0, "prediction": None,  # a sampled replay corpus is paid for by the update that trains on it
    }
    # everything that can change what the probe measures; not its name, nor how it reports and checkpoints
    measured = {k: v for k, v in run.items() if k not in (
        "name", "log_every", "trackers", "checkpoint_every", "keep_checkpoints", "keep_checkpoints_when_finished", "peak_tflops")}
    key = hashlib.sha256(json.dumps(measured, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return validate_run({**run, "name": f"{update.parent}{PROBE_SUFFIX}{key}"}, f"probe of {update.name}")


def probes(candidates: dict[str, RunConfig]) -> dict[str, RunConfig]:
    """Each candidate's probe, the budget shared among them; FitError if it is too small."""
    each = probe_steps(next(iter(candidates.values())), len(candidates))
    return {label: probe_config(cfg, each) for label, cfg in candidates.items()}


Announce = Callable[[dict[str, RunConfig], dict[str, RunConfig]], None]


def predict(store: Store, candidates: dict[str, RunConfig], run_probe: Callable[[RunConfig], object],
            announce: Announce | None = None) -> list[Prediction]:
    """Each candidate update (a label and its run config, all from one parent) predicted. `run_probe(cfg)`
    trains a probe the store does not have yet (the CLI passes `train`); a probe already there is reused.
    `announce(candidates, probes)` is called before any probe trains (the CLI says what they cost)."""
    parents = {cfg.parent for cfg in candidates.values()}
    if len(parents) != 1 or None in parents:
        raise FitError("the candidates do not all start from one version; predict the updates of one parent at a time")
    law, history = parent_law(store, parents.pop())
    start_step = len(history.lrs)
    made = probes(candidates)
    if announce is not None:
        announce(candidates, made)
    out = []
    for label, cfg in candidates.items():
        probe = made[label]
        if not store.exists("versions", probe.name):
            run_probe(probe)
        seen = read_history(store, probe.name)
        probe_lrs, wanted = seen.lrs[start_step:], np.array(cfg.schedule.build(cfg.total_steps, cfg.batch_tokens).lrs())
        prediction = Prediction(label, cfg.total_steps, probe.name, {}, {})
        for corpus, points in seen.points.items():
            mine = [(s - start_step, loss) for s, loss in points if s >= start_step]
            if not mine or mine[0][0] != 0:
                continue  # not evaluated at the probe's start: no parent loss to start from
            fitted: UpdateLaw = fit_update(law, mine[0][1], [s for s, _ in mine], [loss for _, loss in mine], history.lrs, probe_lrs,
                                           warmup_steps=history.warmup_steps, what=f"probe {probe.name} on {corpus}")
            curve = fitted.curve(history.lrs, wanted, warmup_steps=history.warmup_steps)
            if not (np.all(np.isfinite(curve)) and curve.min() > 0):
                raise FitError(f"the loss law fitted to probe {probe.name} on {corpus} predicts a held-out loss of {curve.min():.4g} "
                               f"within the update's {len(wanted)} steps, which no model reaches; no prediction is made from it "
                               "(the probe is too short to pin the update's curve down: predict a shorter update, or fewer candidates at once)")
            prediction.start[corpus], prediction.final[corpus] = fitted.start, float(curve[-1])
            prediction.laws[corpus], prediction.curves[corpus], prediction.probed[corpus] = fitted.as_dict(), curve.tolist(), mine
        out.append(prediction)
    return out


def candidates(store: Store, request: UpdateRequest, shares: list[float]) -> dict[str, RunConfig]:
    """The update `request` asks for at each replay share, labelled `replay F`: what a probe shortens."""
    out = {}
    for share in dict.fromkeys(shares):  # each share checked as --replay is
        one = UpdateRequest(**{**request.model_dump(), "replay": share, "predict": False, "forget_budget": None})
        out[f"replay {share:g}"] = update_config(store, one)
    return out


def predict_request(store: Store, request: UpdateRequest, run_probe: Callable[[RunConfig], object],
                    announce: Announce | None = None) -> RunConfig:
    """The update's run, its replay share settled and its prediction kept (`RunConfig.prediction`): the request's
    own share predicted (`--predict`), or each of `AUTO_REPLAYS` and the smallest whose predicted rise on every old
    corpus is at most `forget_budget` (`--replay auto`); ConfigError if none is."""
    auto = request.replay == "auto"
    shares = list(dict.fromkeys(AUTO_REPLAYS if auto else [request.replay]))
    made = candidates(store, request, shares)
    if auto and len(made) * PROBE_EVALS > PROBE_SHARE * next(iter(made.values())).total_steps:
        raise ConfigError(f"--replay auto probes {len(made)} replay shares within {PROBE_SHARE:.0%} of the update, {PROBE_EVALS} steps "
                          f"each at least, so the update needs {math.ceil(len(made) * PROBE_EVALS / PROBE_SHARE)} steps or more; "
                          "lengthen it (--steps), or predict one share with --replay F --predict")
    predictions = predict(store, made, run_probe, announce)
    new = set(parse_data(request.data))
    chosen = predictions[0]
    if auto:
        if not all(p.forgetting(new) for p in predictions):
            raise ConfigError(f"--replay auto chooses by the predicted forgetting of the lineage's older corpora, but no corpus "
                              f"other than the update's data was predicted for {request.parent}; give the share with --replay F")
        within = [p for p in predictions if max(p.forgetting(new).values()) <= request.forget_budget]
        if not within:
            least = min(predictions, key=lambda p: max(p.forgetting(new).values()))
            corpus, rise = max(least.forgetting(new).items(), key=lambda kv: kv[1])
            raise ConfigError(f"no replay share of {', '.join(f'{s:.0%}' for s in AUTO_REPLAYS)} keeps the predicted forgetting within "
                              f"--forget-budget {request.forget_budget:g} (the least: {rise:+.4f} on {corpus} at {least.candidate}); "
                              "raise the budget, shorten the update (--steps), or choose a share with --replay")
        chosen = within[0]
    record = {"probe": chosen.probe, "start": chosen.start, "heldout": chosen.final, "replay": shares[predictions.index(chosen)]}
    if auto:
        record.update(forget_budget=request.forget_budget,
                      candidates={p.candidate: {"probe": p.probe, "heldout": p.final} for p in predictions})
    return made[chosen.candidate].model_copy(update={"prediction": PredictionRecord.model_validate(record)})
