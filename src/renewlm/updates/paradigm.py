"""The three ways to make the next version, one entry point for each command.

- continue (the default): weights only, re-warm + re-decay, replay from the lineage (Ibrahim et al.).
- switch: path switching, a trunk kept at high LR and a release branched off it (Wang et al.).
- retrain: from scratch on everything the lineage saw plus the new data, the baseline both measure against.
"""

from __future__ import annotations

from typing import Literal

from renewlm.errors import ConfigError
from renewlm.store import MAX_NAME_BYTES, Store
from renewlm.train.config import RunConfig
from renewlm.train.loop import train
from renewlm.updates.retrain import retrain_config
from renewlm.updates.switch import TRUNK_SUFFIX, main_path_of, run_switch, trunk_name, trunk_of_run
from renewlm.updates.update import update_config

Paradigm = Literal["continue", "switch", "retrain"]


def run_file(cfg: RunConfig, store: Store, *, fresh: bool = False) -> dict:
    """`renewlm train RUN.yaml`: one run, or with `paradigm: switch` the run as a trunk plus its release."""
    if cfg.paradigm == "switch":
        return run_switch(store, cfg.name, trunk_of_run(cfg), cfg.decay_fraction, train, fresh=fresh)
    return train(cfg, store, fresh=fresh)


def run_update(
    store: Store, name: str, *, parent: str, data: list[str], paradigm: Paradigm = "continue",
    decay_fraction: float = 0.1, recipe=None, then: list[str] | None = None, switch_at: float | None = None,
    fresh: bool = False, **options,
) -> dict:
    """`renewlm update NEW --from V --data C ... --paradigm P`: build the run(s) and train them.

    Every flag reaches the one paradigm that uses it; a flag another paradigm does not use is refused
    here, so each builder takes only its own options."""
    if paradigm not in ("continue", "switch", "retrain"):
        raise ConfigError(f"unknown paradigm {paradigm!r}; choose continue, switch or retrain")
    if paradigm != "continue" and switch_at is not None:
        raise ConfigError(f"--switch-at moves the reuse recipe's blend switch, which --paradigm {paradigm} does not use; leave it out")
    if paradigm == "retrain":
        unused = [flag for flag, given in (("--recipe", recipe), ("--then", then), ("--replay", options.get("replay")),
                                            ("--replay-from", options.get("replay_from"))) if given]
        if unused:
            raise ConfigError(
                f"--paradigm retrain trains from scratch on all the data, so it takes no {', '.join(unused)}; leave "
                f"{'it' if len(unused) == 1 else 'them'} out"
            )
        options = {k: v for k, v in options.items() if k not in ("replay", "replay_from")}
        return train(retrain_config(store, name, parent=parent, data=data, **options), store, fresh=fresh)
    if paradigm == "switch":
        if recipe is not None or then:
            raise ConfigError(
                "--paradigm switch sets the schedules itself (the trunk at its peak LR, the release's complete decay); "
                "leave out --recipe and --then, and set the decay length with --decay-fraction"
            )
        if not 0 < decay_fraction <= 1:
            raise ConfigError(f"--decay-fraction must be in (0, 1] (got {decay_fraction}); 0.1 is the default")
        store.path("versions", name)
        if len(trunk_name(name).encode()) > MAX_NAME_BYTES:  # both names are checked before any compute
            raise ConfigError(
                f"release name {name[:24]!r}... is too long for path switching: its trunk is named NAME{TRUNK_SUFFIX}, "
                f"so a release name has at most {MAX_NAME_BYTES - len(TRUNK_SUFFIX)} bytes; choose a shorter name"
            )
        trunk = update_config(store, trunk_name(name), parent=main_path_of(store, parent), data=data, kind="trunk", **options)
        return run_switch(store, name, trunk, decay_fraction, train, fresh=fresh)
    cfg = update_config(store, name, parent=parent, data=data, recipe=recipe, then=then, switch_at=switch_at, **options)
    return train(cfg, store, fresh=fresh)
