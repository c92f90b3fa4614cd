"""Study 2: learning-rate schedules over a sequence of three tasks (recipes.md §1 and §5).

Tasks, in this order: A (pre-training, prose), B (a weak shift: prose on other subjects), code (a
strong shift). Weak before strong is the usual order of data releases, and it lets the last task
show forgetting of two earlier tasks of different distance. No replay anywhere: the schedule alone
decides how much is learned and forgotten. Four schedule families, each over the whole sequence:

- (a) `cosine`: re-warm to the pre-training peak and re-decay to 0.1·peak at every task (Ibrahim et al.).
- (b) `constant`: no re-warm; every task at the previous run's floor (0.1·peak).
- (c) `switch`: the infinite schedule as renewlm's path switching: a main path (trunk) that never
  decays, continued with its optimizer state for each task, and a release per task branched off it
  with a fast complete decay (Wang et al.; Ibrahim et al.'s infinite schedules; Hägele et al.).
- (d) `wsd`: warmup-stable-decay per task: re-warm, hold the peak, 1-sqrt decay over the last 20%.

(a), (b) and (d) continue from the shared base `rp-a` (200 cosine steps on A): it is the decayed
model a team holds after a cosine pre-training, which is exactly where these three recipes start.
(c) cannot: its pre-training must not decay, so it has its own main path `s2-inf-a-trunk` on A and a
release `s2-inf-a` branched off it. Compute is matched: each task costs the same steps in every
family (for (c), the trunk's 90% plus the release's 10% decay, MiniCPM's "10% is enough").
The base runs use seed 0 (as `rp-a` does); the updates are repeated over --seeds (data order).

Run: python benchmarks/reproduce/02_schedules.py [--size tiny] [--seeds 0 1]
"""

from __future__ import annotations

import time

from common import (
    BASE, CODE, PROSE_A, PROSE_B, arguments, base, ensure, figure_path, save_figure, heldout, mean_spread, pretrain_config, say,
    write_results,
)

from renewlm.train.config import validate_run
from renewlm.updates.paradigm import run_file, run_update
from renewlm.updates.request import UpdateRequest
from renewlm.updates.update import update_config

STUDY = "s02_schedules"
TASKS = [PROSE_A, PROSE_B, CODE]
TASK_LABELS = {PROSE_A: "A (prose)", PROSE_B: "B (weak shift)", CODE: "code (strong shift)"}
FAMILIES = {
    "cosine": "(a) re-warm + re-decay (cosine)",
    "constant": "(b) no re-warm: constant at the floor",
    "switch": "(c) infinite: main path + a release per task",
    "wsd": "(d) WSD per task (re-warm, 20% 1-sqrt decay)",
}
SWITCH_BASE = "s2-inf-a"
DECAY_SHARE = 0.1  # of each task's steps, the release's decay in (c) (Wang et al. default, MiniCPM)


def trunk_steps(task_steps: int) -> tuple[int, float]:
    """Steps of the main path for one task and the release's decay_fraction (of the trunk's steps), so
    trunk + release together cost the task's steps, as one cosine run does."""
    trunk = round(task_steps * (1 - DECAY_SHARE))
    return trunk, (task_steps - trunk) / trunk


def switch_base(store, size) -> None:
    """(c)'s pre-training: a trunk on A at the peak (1% warmup, never decaying) and release `s2-inf-a`."""
    if store.exists("versions", SWITCH_BASE):
        return
    steps, decay_fraction = trunk_steps(size.pretrain_steps)
    schedule = {"name": "wsd", "peak_lr": size.peak_lr, "decay_fraction": 0.0}
    cfg = pretrain_config(SWITCH_BASE, size, {PROSE_A: 1.0}, steps=steps, schedule=schedule)
    started = time.perf_counter()
    run_file(validate_run({**cfg.model_dump(mode="json"), "paradigm": "switch", "decay_fraction": decay_fraction}, SWITCH_BASE), store)
    say(f"  {SWITCH_BASE} (+ trunk): {time.perf_counter() - started:.0f} s")


def update(store, size, family: str, name: str, parent: str, corpus: str, seed: int) -> None:
    """One task of one family: `renewlm update NAME --from PARENT --data CORPUS` with the family's recipe."""
    if store.exists("versions", name):
        return
    if family == "switch":
        steps, decay_fraction = trunk_steps(size.update_steps)
        started = time.perf_counter()
        run_update(store, UpdateRequest(name=name, parent=parent, data=[corpus], paradigm="switch",
                                        decay_fraction=decay_fraction, steps=steps, seed=seed))
        say(f"  {name} (+ trunk): {time.perf_counter() - started:.0f} s")
    else:
        ensure(store, update_config(store, UpdateRequest(name=name, parent=parent, data=[corpus], recipe=family,
                                                         steps=size.update_steps, seed=seed)))


def sequence(store, size, family: str, seed: int) -> list[str]:
    """The family's model after each task: the task-1 model, then one update per later task."""
    models = [SWITCH_BASE if family == "switch" else BASE]
    for corpus in TASKS[1:]:
        name = f"s2-{family}-s{seed}-{'b' if corpus == PROSE_B else 'code'}"
        say(f"{FAMILIES[family]}, seed {seed}: task {corpus} -> {name}")
        update(store, size, family, name, models[-1], corpus, seed)
        models.append(name)
    return models


def summarize(losses: dict, models_by_seed: dict[int, list[str]]) -> dict:
    """Per task t (after it): loss on every corpus, adaptation (loss on task t's data) and forgetting
    (rise of the loss on each earlier task since right after it was learned), mean ± spread over seeds."""
    seeds = list(models_by_seed)
    after = []
    for t in range(len(TASKS)):
        per_corpus = {c: mean_spread([losses[models_by_seed[s][t]][c] for s in seeds]) for c in TASKS}
        forgetting = {
            TASKS[k]: mean_spread([losses[models_by_seed[s][t]][TASKS[k]] - losses[models_by_seed[s][k]][TASKS[k]] for s in seeds])
            for k in range(t)
        }
        seen = mean_spread([sum(losses[models_by_seed[s][t]][c] for c in TASKS[: t + 1]) / (t + 1) for s in seeds])
        after.append({"task": TASKS[t], "loss": per_corpus, "adaptation": per_corpus[TASKS[t]], "forgetting": forgetting,
                      "seen_average": seen, "models": [models_by_seed[s][t] for s in seeds]})
    return {"after_task": after}


def fmt(x: dict) -> str:
    return f"{x['mean']:.3f}±{x['spread']:.3f}"


def table(results: dict) -> None:
    say("\nafter task 2 (B) and task 3 (code); held-out loss, mean ± half-range over seeds; forgetting = rise since learned")
    say(f"{'schedule':<48}{'B':>13}{'forgot A':>13}  |{'code':>13}{'forgot A':>13}{'forgot B':>13}{'avg A,B,code':>14}")
    for family, label in FAMILIES.items():
        t2, t3 = results[family]["after_task"][1], results[family]["after_task"][2]
        say(f"{label:<48}{fmt(t2['adaptation']):>13}{fmt(t2['forgetting'][PROSE_A]):>13}  |{fmt(t3['adaptation']):>13}"
            f"{fmt(t3['forgetting'][PROSE_A]):>13}{fmt(t3['forgetting'][PROSE_B]):>13}{fmt(t3['seen_average']):>14}")


def plot(results: dict, path) -> None:
    """One panel per schedule: loss on each task's data (a line per corpus) after each task, seed range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 7.5), sharey=True)
    x = list(range(1, len(TASKS) + 1))
    for ax, (family, label) in zip(axes.flat, FAMILIES.items()):
        for corpus, color in zip(TASKS, ("tab:blue", "tab:orange", "tab:green")):
            stats = [step["loss"][corpus] for step in results[family]["after_task"]]
            lo = [min(s["values"]) for s in stats]
            hi = [max(s["values"]) for s in stats]
            ax.plot(x, [s["mean"] for s in stats], "o-", color=color, label=f"loss on {TASK_LABELS[corpus]}")
            ax.fill_between(x, lo, hi, color=color, alpha=0.25)
        ax.set_title(label, fontsize=10)
        ax.set_xticks(x, ["after A", "after B", "after code"])
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("held-out loss")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Schedules over three tasks (A → B → code): adaptation and forgetting\n(shading: the range over seeds)", fontsize=10)
    save_figure(fig, path)


def main() -> None:
    started = time.perf_counter()
    args = arguments(__doc__.split("\n")[0])
    store, size = args.store, args.size
    base(store, size)
    switch_base(store, size)
    models = {f: {s: sequence(store, size, f, s) for s in args.seeds} for f in FAMILIES}
    names = list(dict.fromkeys(m for f in models.values() for seq in f.values() for m in seq))
    say(f"held-out evaluation of {len(names)} versions on {', '.join(TASKS)}")
    losses = heldout(store, names, TASKS)
    results = {f: summarize(losses, models[f]) for f in FAMILIES}
    table(results)
    plot(results, figure_path(STUDY))
    write_results(STUDY, args, {
        "tasks": TASKS, "families": FAMILIES, "decay_share": DECAY_SHARE, "losses": losses,
        "models": {f: {str(s): seq for s, seq in m.items()} for f, m in models.items()}, "results": results,
    }, started)


if __name__ == "__main__":
    main()
