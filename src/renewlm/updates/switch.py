"""Path switching (Wang et al. 2024): the user names releases; renewlm keeps the main path.

A `switch` update is two runs. The main path (trunk `NEW-trunk`) continues the trunk the parent
release branched off (weights + AdamW state, constant LR at the trunk's peak), or, for a release with
no trunk yet, starts one from its weights (warmup, then the peak held). The release `NEW` then
branches off that new trunk: its weights and optimizer state, the same mixture, and a complete, fast
decay over `decay_fraction` of the trunk update's tokens (MiniCPM: 10% is enough; recipes.md §3).
The next update continues the trunk, never the release. Re-running the command skips a finished
trunk and resumes whatever was interrupted.

An averaged release (`--release average`) needs no decay run: the trunk run keeps the uniform average
of its weights over its last `--average-window` steps (train/ema.py's WindowAverage) and writes it as
release `NEW` beside trunk `NEW-trunk` (PMA, Li et al. 2025; WSM, Tian et al. 2025). Either kind of
release records the trunk, so the next update, of either kind, continues it.
"""

from __future__ import annotations

from collections.abc import Callable

from renewlm.errors import ConfigError
from renewlm.store import Store
from renewlm.train.config import RunConfig, validate_run
from renewlm.train.run import config_changes
from renewlm.train.run_record import read_identity
from renewlm.versions import list_versions, read_version

TRUNK_SUFFIX = "-trunk"
# A decay's first step runs at the LR it starts from, so a one-step branch is the trunk's LR again: no
# decay at all. Two steps end at 29% of the trunk's LR (1-sqrt: 1 − √(1/2)), five at 11%, ten at 5%.
MIN_DECAY_STEPS = 2
# Without --average-window: the trunk update's last 10% of steps, the share a decay branch would train (MiniCPM).
DEFAULT_AVERAGE_FRACTION = 0.1


def trunk_name(release: str) -> str:
    return f"{release}{TRUNK_SUFFIX}"


def main_path_of(store: Store, release: str) -> str:
    """The version a switch update from `release` continues: its trunk, or the release itself."""
    meta = read_version(store, release)
    if meta.kind == "trunk":
        released = sorted(m.name for m in list_versions(store) if m.trunk == release)
        hint = f"name the release that branched off it ({', '.join(released)})" if released else "name a release"
        raise ConfigError(
            f"--paradigm switch takes a release, but {release!r} is a trunk that renewlm keeps for you; {hint}"
        )
    return meta.trunk or release


def branch_config(name: str, trunk: RunConfig, decay_fraction: float) -> RunConfig:
    """The release branching off `trunk` (once written): its state, its mixture read on from where the
    trunk stopped (`data_offset`), a complete decay from the LR the trunk ended at over
    `decay_fraction` of the trunk's steps."""
    if len(trunk.mixture.phases) > 1:
        raise ConfigError(
            f"path switching reads one mixture on the main path and its releases, but {trunk.name!r} has "
            f"{len(trunk.mixture.phases)} phases; give the switch run a one-phase mixture"
        )
    steps = trunk.total_steps
    end_lr = trunk.schedule.build(steps, trunk.batch_tokens).lr(steps - 1)
    run = {
        **trunk.model_dump(mode="json"),
        "name": name, "parent": trunk.name, "preset": None, "tokenizer": None, "from_scratch": False,
        "kind": "release", "load_optimizer": True, "paradigm": "continue",
        "schedule": {"name": "branch", "start_lr": end_lr, "decay_fraction": 1.0},
        "steps": max(1, round(decay_fraction * steps)), "tokens": None,
        "generation_flops": 0.0,  # a sampled replay corpus is paid for once, by the trunk
        "average": None,  # the trunk's averaged release is the trunk's; a decay branch off it is another release
        "data_offset": trunk.data_offset + steps * trunk.batch_samples,  # samples the trunk has not read
    }
    return validate_run(run, f"release {name}")


def averaging_trunk(name: str, trunk: RunConfig, window: int | None) -> RunConfig:
    """`trunk` keeping the uniform average of its last `window` steps (default: its last 10%), written as release `name`."""
    steps = window if window is not None else max(1, round(DEFAULT_AVERAGE_FRACTION * trunk.total_steps))
    return validate_run({**trunk.model_dump(mode="json"), "average": {"release": name, "steps": steps}}, f"trunk of {name}")


def run_switch(
    store: Store, name: str, trunk: RunConfig, decay_fraction: float, train: Callable, *, fresh: bool,
    release: str = "decay", average_window: int | None = None,
) -> dict:
    """Write trunk `trunk.name` (unless a finished trunk of the same config exists), then release `name`: a decay
    branch off it, or (`release="average"`) the trunk run's average of its last steps, written by that run."""
    if store.exists("versions", name):
        raise ConfigError(f"version {name!r} already exists in {store.root}; choose another name or remove it with `renewlm rm {name}`")
    if release == "average":
        trunk = averaging_trunk(name, trunk, average_window)
        if store.exists("versions", trunk.name):
            raise ConfigError(
                f"trunk {trunk.name!r} already exists without the average release {name!r} needs; remove it with "
                f"`renewlm rm {trunk.name}` or name the release differently"
            )
        info = train(trunk, store, fresh=fresh)
        if "path" not in info:  # not the main process
            return info
        return {**read_version(store, name).model_dump(mode="json"), "path": str(store.path("versions", name))}
    release = branch_config(name, trunk, decay_fraction)  # its problems stop the command before the trunk trains
    if release.total_steps < MIN_DECAY_STEPS:
        need = next(n for n in range(trunk.total_steps, 10**9) if round(decay_fraction * n) >= MIN_DECAY_STEPS)
        raise ConfigError(
            f"release {name!r} would decay over {release.total_steps} step{'s' * (release.total_steps != 1)} ({decay_fraction:g} of the trunk's {trunk.total_steps}), which "
            f"runs at the trunk's LR, but a release decays over at least {MIN_DECAY_STEPS} steps; give the update at "
            f"least {need} steps or a larger --decay-fraction (decay_fraction: in a run file)"
        )
    if store.exists("versions", trunk.name):
        identity = read_identity(store.path("runs", trunk.name))
        if identity is None or config_changes(identity["config"], trunk):
            raise ConfigError(
                f"trunk {trunk.name!r} already exists from another update; remove it with `renewlm rm {trunk.name}` "
                f"or name the release differently"
            )
    else:
        train(trunk, store, fresh=fresh)
    return train(release, store, fresh=fresh)


def trunk_of_run(cfg: RunConfig) -> RunConfig:
    """A run file with `paradigm: switch`: the run itself is the main path, written as NAME-trunk."""
    run = {**cfg.model_dump(mode="json"), "name": trunk_name(cfg.name), "kind": "trunk", "paradigm": "continue"}
    return validate_run(run, f"trunk of {cfg.name}")
