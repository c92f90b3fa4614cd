"""How well the loss law fitted to a parent's logged curve predicts what the parent's data's loss does next.

On the converged regime's store (benchmarks/reproduce/regime.py: `cv-base`, 4,200 cosine steps on `cv-prose`
with a held-out evaluation every 200, and `cv-check`, 600 more steps re-warmed to the peak and re-decayed on
the same data), three predictions no fit has seen the answer to:

- `tail`: the law fitted to the base's points up to two thirds of its steps, predicting the rest (the
  cosine's low-LR end, where annealing does most of its work); naive: the last fitted point's loss.
- `check`: the law fitted to the whole base curve, predicting `cv-check`'s last held-out loss, after a
  re-warm (a negative annealing area) and a second decay; naive: the base's last loss (nothing changes).
- `fit`: the law's own residual on the base's curve.

    python benchmarks/predict.py [--store .reproduce-store/converged]

Fits only (seconds); the runs are regime.py's. Writes docs/results/predict_parent.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "reproduce"))

from common import machine  # noqa: E402
from corpora import PROSE  # noqa: E402
from regime import BASE, CHECK  # noqa: E402

from renewlm.store import Store, write_json  # noqa: E402
from renewlm.updates.history import read_history  # noqa: E402
from renewlm.updates.loss_law import fit  # noqa: E402

OUT = ROOT / "docs" / "results" / "predict_parent.json"


def errors(predicted: list[float], measured: list[float]) -> dict:
    e = np.abs(np.array(predicted) - np.array(measured))
    rel = e / np.array(measured)
    return {"mean_abs": float(e.mean()), "worst_abs": float(e.max()), "mean_rel": float(rel.mean()), "worst_rel": float(rel.max())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, default=ROOT / ".reproduce-store" / "converged")
    args = p.parse_args()
    started = time.perf_counter()
    store = Store(args.store)
    base = read_history(store, BASE)
    steps, losses = base.curve(PROSE)
    steps, losses = [s for s in steps if s > 0], [loss for s, loss in zip(steps, losses) if s > 0]  # step 0: random weights
    law = fit(steps, losses, base.lrs, warmup_steps=base.warmup_steps, what=f"{BASE}'s curve")
    out = {"base": BASE, "corpus": PROSE, "points": len(steps), "law": law.as_dict(), "fit": {"rmse": law.rmse}}
    print(f"fit to {BASE} ({len(steps)} points): L0 {law.L0:.4f} A {law.A:.4f} alpha {law.alpha:.4f} C {law.C:.4f}, rmse {law.rmse:.4f}")

    cut = len(base.lrs) * 2 // 3
    seen = [(s, loss) for s, loss in zip(steps, losses) if s <= cut]
    unseen = [(s, loss) for s, loss in zip(steps, losses) if s > cut]
    early = fit([s for s, _ in seen], [loss for _, loss in seen], base.lrs, warmup_steps=base.warmup_steps, what="the first two thirds")
    curve = early.curve(base.lrs, warmup_steps=base.warmup_steps)
    predicted, measured = [float(curve[s - 1]) for s, _ in unseen], [loss for _, loss in unseen]
    out["tail"] = {"fitted_points": len(seen), "cut_step": cut, "steps": [s for s, _ in unseen], "predicted": predicted, "measured": measured,
                   "law": errors(predicted, measured), "naive": errors([seen[-1][1]] * len(unseen), measured)}
    print(f"tail (fit to steps <= {cut}, {len(seen)} points; predict {len(unseen)}): mean error {out['tail']['law']['mean_abs']:.4f}, "
          f"worst {out['tail']['law']['worst_abs']:.4f}; naive {out['tail']['naive']['mean_abs']:.4f}")

    if store.exists("versions", CHECK):
        check = read_history(store, CHECK)
        check_steps, check_losses = check.curve(PROSE)
        predicted = float(law.curve(check.lrs, warmup_steps=check.warmup_steps)[check_steps[-1] - 1])
        out["check"] = {"version": CHECK, "step": check_steps[-1], "predicted": predicted, "measured": check_losses[-1],
                        "law": errors([predicted], [check_losses[-1]]), "naive": errors([losses[-1]], [check_losses[-1]])}
        print(f"{CHECK}: predicted {predicted:.4f}, measured {check_losses[-1]:.4f} (naive {losses[-1]:.4f})")
    out.update(machine=machine(), wall_seconds=round(time.perf_counter() - started, 1), load_average_end=os.getloadavg())
    write_json(OUT, out)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
