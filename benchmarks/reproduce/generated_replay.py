"""Replay sampled from the parent against real replay and no replay, in the converged regime.

From the converged base (regime.py's `cv-base`, trained on `cv-prose`), each shift (`cv-man`, `cv-code`, named
weak and strong by the base's measured loss gap) gets three updates of the same length, the `cosine` recipe
(re-warm to the base's peak, re-decay):

- `none`: no replay;
- `real`: a share F of every batch replayed from `cv-prose`, the base's own data;
- `parent`: the same share sampled from the base (`--replay-source parent`, temperature 1, from BOS), the
  case of a model whose pre-training data is not at hand.

Forgetting is the rise of `cv-prose`'s held-out loss over the base. A replay removes the share
(F_none − F_replay) / F_none of it. Goal: the sampled replay removes at least half of what real replay removes.
Also measured: the sampling's tokens per second on this machine (its seconds, which the sampled corpus's record
keeps) and its FLOPs beside the update's.

    python benchmarks/reproduce/generated_replay.py [--steps 300] [--fraction 0.05] [--shifts weak strong]

Resumable: a finished update is never run again, and a sampled corpus is reused. Writes
docs/results/generated_replay.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c1_replay import measured_shifts  # noqa: E402
from common import RESULTS, ROOT, ensure, heldout, machine, say  # noqa: E402
from corpora import PROSE  # noqa: E402
from regime import BASE, REGIME, default_store, require_converged  # noqa: E402

from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402
from renewlm.store import write_json  # noqa: E402

ARMS = ("none", "real", "parent")


def update(store, shift: str, corpus: str, arm: str, fraction: float, steps: int) -> dict:
    """One update of the arm; its name, the sampling's seconds and tokens (parent, when sampled now), FLOPs."""
    name = f"g-{shift}-{arm}-r{round(fraction * 100):02d}-{steps}"
    replay = 0.0 if arm == "none" else fraction
    request = UpdateRequest(
        name=name, parent=BASE, data=[corpus], replay=replay, replay_source="parent" if arm == "parent" else "data",
        recipe="cosine", steps=steps, seed=0, **REGIME.run_shape(),
    )
    cfg = update_config(store, request)  # samples the replay corpus here, for the parent arm, unless it exists
    ensure(store, cfg)
    record = read_version(store, name)
    row = {"version": name, "flops": record.flops, "generation_flops": record.generation_flops}
    if arm == "parent":
        from renewlm.data.corpus import Corpus

        replay_corpus = next(iter(cfg.mixture.replay.corpora))
        made = Corpus.open(store, replay_corpus, verify=False).manifest["generated"]
        seconds = made.get("seconds")  # a corpus sampled before its record kept the time has none
        row.update(replay_corpus=replay_corpus, sampled_tokens=made["sampled_tokens"], sampling_flops=made["flops"],
                   sampling_seconds=seconds, sampling_tokens_per_second=round(made["sampled_tokens"] / seconds) if seconds else None)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="steps of each update (16,384 tokens each)")
    p.add_argument("--fraction", type=float, default=0.05, help="the replay share of the real and the sampled arm")
    p.add_argument("--shifts", nargs="+", choices=["weak", "strong"], default=["weak", "strong"])
    args = p.parse_args()
    started = time.perf_counter()
    store = default_store()
    check = require_converged(store)
    shifts = measured_shifts(store)
    results = {}
    for shift in args.shifts:
        corpus = shifts[shift]
        rows = {arm: update(store, shift, corpus, arm, args.fraction, args.steps) for arm in ARMS}
        losses = heldout(store, [BASE] + [r["version"] for r in rows.values()], [PROSE, corpus])
        for arm, row in rows.items():
            row.update(old=losses[row["version"]][PROSE], new=losses[row["version"]][corpus],
                       forgetting=losses[row["version"]][PROSE] - losses[BASE][PROSE])
        none = rows["none"]["forgetting"]
        removed = {arm: (none - rows[arm]["forgetting"]) / none if none > 0 else None for arm in ("real", "parent")}
        ratio = removed["parent"] / removed["real"] if removed["real"] and removed["parent"] is not None else None
        results[shift] = {"corpus": corpus, "base_old": losses[BASE][PROSE], "base_new": losses[BASE][corpus],
                          "arms": rows, "removed": removed, "parent_over_real": ratio,
                          "goal_met": ratio is not None and ratio >= 0.5}
        for arm, row in rows.items():
            say(f"{shift} ({corpus}) {arm:>6}: old {row['old']:.4f} (forgetting {row['forgetting']:+.4f}) new {row['new']:.4f}")
        say(f"{shift}: real replay removes {removed['real']:.0%} of the forgetting, sampled replay {removed['parent']:.0%}"
            if none > 0 else f"{shift}: no forgetting without replay ({none:+.4f}); nothing to remove")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "study": "generated_replay", "base": BASE, "regime": REGIME.__dict__, "convergence": check,
        "steps": args.steps, "fraction": args.fraction, "shifts": results, "machine": machine(),
        "wall_seconds": round(time.perf_counter() - started, 1), "load_average_end": os.getloadavg(),
    }
    out_path = RESULTS / "generated_replay.json"
    write_json(out_path, out)
    say(f"wrote {out_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
