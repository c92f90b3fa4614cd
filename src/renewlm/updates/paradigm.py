"""The three ways to make the next version, one entry point for each command.

- continue (the default): weights only, re-warm + re-decay, replay from the lineage (Ibrahim et al.).
- switch: path switching, a trunk kept at high LR and a release branched off it (Wang et al.).
- retrain: from scratch on everything the lineage saw plus the new data, the baseline both measure against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from renewlm.errors import ConfigError
from renewlm.store import MAX_NAME_BYTES, Store
from renewlm.train.config import RunConfig
from renewlm.train.loop import train
from renewlm.updates.request import UpdateRequest
from renewlm.updates.retrain import retrain_config
from renewlm.updates.switch import TRUNK_SUFFIX, main_path_of, run_switch, trunk_name, trunk_of_run
from renewlm.updates.update import update_config

if TYPE_CHECKING:
    from renewlm.updates.predict import Announce


def run_file(cfg: RunConfig, store: Store, *, fresh: bool = False) -> dict:
    """`renewlm train RUN.yaml`: one run, or with `paradigm: switch` the run as a trunk plus its release."""
    if cfg.paradigm == "switch":
        return run_switch(store, cfg.name, trunk_of_run(cfg), cfg.decay_fraction, train, fresh=fresh)
    return train(cfg, store, fresh=fresh)


def run_update(store: Store, request: UpdateRequest, *, fresh: bool = False, announce: Announce | None = None,
               predicted: Callable[[RunConfig], None] | None = None) -> dict:
    """`renewlm update NEW --from V --data C ... --paradigm P`: build the run(s) and train them. With `--predict`
    or `--replay auto` the update is predicted first (updates/predict.py): `announce` is handed the candidates and
    their probes before a probe trains, `predicted` the update's run, its share settled and its prediction kept,
    before it trains; the version records the prediction.

    The request has refused every flag its paradigm does not take; what is left here needs the store."""
    if request.predict or request.replay == "auto":
        from renewlm.updates.predict import predict_request

        for kind in ("runs", "versions"):  # the update's own name is refused before any probe trains
            store.check_new(kind, request.name)
        if store.exists("versions", request.name):
            raise ConfigError(f"version {request.name!r} already exists in {store.root}; choose another name or remove it "
                              f"with `renewlm rm {request.name}`")
        cfg = predict_request(store, request, lambda probe: train(probe, store), announce)
        if predicted is not None:
            predicted(cfg)
        return train(cfg, store, fresh=fresh)
    if request.paradigm == "retrain":
        return train(retrain_config(store, request), store, fresh=fresh)
    if request.paradigm == "switch":
        name = request.name
        store.path("versions", name)
        if len(trunk_name(name).encode()) > MAX_NAME_BYTES:  # both names are checked before any compute
            raise ConfigError(
                f"release name {name[:24]!r}... is too long for path switching: its trunk is named NAME{TRUNK_SUFFIX}, "
                f"so a release name has at most {MAX_NAME_BYTES - len(TRUNK_SUFFIX)} bytes; choose a shorter name"
            )
        main_path = request.model_copy(update={"name": trunk_name(name), "parent": main_path_of(store, request.parent)})
        trunk = update_config(store, main_path, kind="trunk")
        return run_switch(store, name, trunk, request.decay_fraction, train, fresh=fresh, release=request.release,
                          average_window=request.average_window)
    return train(update_config(store, request), store, fresh=fresh)
