"""The converged regime: one shared base, trained once to near its plateau, and the check that says so.

    python benchmarks/reproduce/regime.py [--store DIR]      # resumable; prints and writes docs/results/regime.json

The base is the `tiny` preset (950,912 parameters at the 4,096-token vocabulary) pre-trained on `cv-prose`
(corpora.py) for 4,200 steps of 16,384 tokens: 68.8M tokens, 72 tokens per parameter, about 3.4 passes over
its data, cosine from a 1% warmup to 0.1·peak. An update is 600 steps (9.8M tokens). A first base of 1,200
steps (20.7 tokens per parameter) failed the check below (gains 0.18, 0.09, 0.05 per further 9.8M tokens;
docs/results/regime-20tpp.json), which is what set this length.

The check, written into every study that uses the base: the base continued for one update's length on its own
data (`renewlm update --from cv-base --data cv-prose --recipe cosine`, what an update with no new data would
be) must improve that data's held-out loss by less than 0.03; otherwise the base is not converged and the
study says so. The shift table gives the base's loss gap on each candidate shift, measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, ensure, heldout, machine, say, write_study  # noqa: E402
from corpora import CODE, MAN, PROSE, TOKENIZER, VOCAB, build  # noqa: E402

from renewlm.model.presets import PRESETS, padded_vocab  # noqa: E402
from renewlm.store import Store, write_json  # noqa: E402
from renewlm.train.config import validate_run  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402

BASE = "cv-base"
CHECK = "cv-check"
CONVERGED = 0.03  # the most a base-length-and-a-half run on the base's data may still gain


@dataclass(frozen=True)
class Regime:
    preset: str = "tiny"
    seq_len: int = 256
    batch_tokens: int = 16_384
    base_steps: int = 4200
    update_steps: int = 600
    peak_lr: float = 2e-3
    base: str = BASE  # the base's version name (another regime's base sits beside this one in the store)

    def run_shape(self) -> dict:
        return {"seq_len": self.seq_len, "batch_tokens": self.batch_tokens, "micro_batch": self.batch_tokens // self.seq_len}


REGIME = Regime()


def default_store() -> Store:
    return Store(ROOT / ".reproduce-store" / "converged")


def base(store: Store, regime: Regime = REGIME, seed: int = 0):
    """The regime's shared base: the preset from random weights on cv-prose, cosine, `seed` 0."""
    name = regime.base if seed == 0 else f"{regime.base}-s{seed}"
    return ensure(store, validate_run({
        "name": name, "preset": regime.preset, "tokenizer": TOKENIZER,
        "mixture": {"phases": [{"corpora": {PROSE: 1.0}}]},
        "schedule": {"name": "cosine", "peak_lr": regime.peak_lr},
        "steps": regime.base_steps, "seed": seed, **regime.run_shape(),
        # the held-out curve a prediction fits (docs/prediction.md); evaluating changes no weight
        "eval_every": regime.base_steps // 21,
    }, name))


def convergence(store: Store, regime: Regime = REGIME) -> dict:
    """The base continued one update's length on its own data: how much its data's held-out loss still drops."""
    base(store, regime)
    ensure(store, update_config(store, UpdateRequest(
        name=CHECK, parent=BASE, data=[PROSE], recipe="cosine", steps=regime.update_steps, seed=0, **regime.run_shape(),
    )))
    losses = heldout(store, [BASE, CHECK], [PROSE])
    gain = losses[BASE][PROSE] - losses[CHECK][PROSE]
    return {"base_loss": losses[BASE][PROSE], "continued_loss": losses[CHECK][PROSE], "gain": gain, "limit": CONVERGED, "converged": gain < CONVERGED}


def curve(store: Store, rounds: int, regime: Regime = REGIME) -> list[dict]:
    """The check repeated: round k continues round k-1 (`cv-check`, `cv-check2`, ...) for one more update's
    length on the base's data, re-warmed and re-decayed. Its gains say how far the plateau is: how long a
    base would have to train for the check to pass."""
    convergence(store, regime)
    names = [BASE, CHECK] + [f"{CHECK}{k}" for k in range(2, rounds + 1)]
    for parent, name in zip(names[1:], names[2:]):
        ensure(store, update_config(store, UpdateRequest(
            name=name, parent=parent, data=[PROSE], recipe="cosine", steps=regime.update_steps, seed=0, **regime.run_shape(),
        )))
    losses = heldout(store, names, [PROSE])
    tokens = [regime.base_steps * regime.batch_tokens + k * regime.update_steps * regime.batch_tokens for k in range(len(names))]
    rows = [{"version": n, "tokens": t, "loss": losses[n][PROSE]} for n, t in zip(names, tokens)]
    for before, row in zip(rows, rows[1:]):
        row["gain"] = before["loss"] - row["loss"]
    return rows


def shifts(store: Store) -> dict:
    """The base's held-out loss on each corpus and its gap to the base's own data."""
    losses = heldout(store, [BASE], [PROSE, MAN, CODE])[BASE]
    return {"loss": losses, "gap": {c: losses[c] - losses[PROSE] for c in (MAN, CODE)}}


def release_check(store: Store, release: str, regime: Regime = REGIME) -> dict:
    """A study's own first release (not `cv-base`) given the base's check: continued one update's length on
    `cv-prose` (cosine from the peak) as `RELEASE-check`, how much its held-out loss still drops, said aloud."""
    check = f"{release}-check"
    ensure(store, update_config(store, UpdateRequest(name=check, parent=release, data=[PROSE], recipe="cosine", lr=regime.peak_lr,
                                                     steps=regime.update_steps, seed=0, **regime.run_shape())))
    losses = heldout(store, [release, check], [PROSE])
    gain = losses[release][PROSE] - losses[check][PROSE]
    say(f"{release}: held-out {losses[release][PROSE]:.4f}; continued on its data {losses[check][PROSE]:.4f} (gain {gain:+.4f}, "
        f"limit {CONVERGED}): {'converged' if gain < CONVERGED else 'NOT converged: this study cannot be read'}")
    return {"release_loss": losses[release][PROSE], "continued_loss": losses[check][PROSE], "gain": gain, "converged": gain < CONVERGED}


def require_converged(store: Store, regime: Regime = REGIME) -> dict:
    """`convergence`, said aloud: every study calls it first and records it."""
    check = convergence(store, regime)
    verdict = "converged" if check["converged"] else "NOT converged: this study's verdicts cannot be read"
    say(f"base {BASE}: held-out {check['base_loss']:.4f}; continued on its data {check['continued_loss']:.4f} "
        f"(gain {check['gain']:+.4f}, limit {CONVERGED}): {verdict}")
    return check


@dataclass
class Study:
    """One invocation of a study in this regime: its arguments, the store, the base's check and the clock."""

    name: str  # cNN_what: the JSON's name; its versions are named cN-...
    args: argparse.Namespace
    store: Store
    convergence: dict
    started: float

    def write(self, payload: dict) -> Path:
        """docs/results/NAME.json: `payload` beside what every study records (regime, check, seeds, machine, time)."""
        head = {"study": self.name, "regime": REGIME.__dict__, "base": BASE, "convergence": self.convergence, "seeds": self.args.seeds}
        return write_study(self.name, self.store, self.started, {**head, **payload})


def begin(name: str, doc: str, options: Callable[[argparse.ArgumentParser], None] | None = None) -> Study:
    """A study's start: its command line (`--seeds`, default 0 1 2, and `options`), the store, and the base's
    convergence check said aloud before anything is trained."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    if options:
        options(p)
    args = p.parse_args()
    started = time.perf_counter()
    store = default_store()
    return Study(name, args, store, require_converged(store), started)


def main() -> None:
    import torch

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, default=None)
    p.add_argument("--rounds", type=int, default=1, help="repeat the check this many times, each from the last (the curve to the plateau)")
    args = p.parse_args()
    store = Store(args.store) if args.store else default_store()
    counts = build(store)
    started = time.perf_counter()
    base(store)
    check = require_converged(store)
    rows = curve(store, args.rounds)
    for row in rows[1:]:
        say(f"{row['version']}: {row['tokens'] / 1e6:.1f}M tokens in all, held-out {row['loss']:.4f} (gain {row['gain']:+.4f})")
    table = shifts(store)
    for corpus, gap in table["gap"].items():
        say(f"shift to {corpus}: base loss {table['loss'][corpus]:.4f}, gap {gap:+.4f}")
    shape = PRESETS[REGIME.preset]
    params = shape.block_parameters() + padded_vocab(VOCAB) * shape.hidden * (1 if shape.tie_embeddings else 2)
    out = {
        "regime": REGIME.__dict__, "base": BASE, "parameters": params, "corpora": counts,
        "tokens_per_parameter": REGIME.base_steps * REGIME.batch_tokens / params,
        "convergence": check, "curve": rows, "shifts": table, "machine": machine(), "threads": torch.get_num_threads(),
        # this invocation's time (a rerun that trains nothing takes a minute) and the versions' training seconds
        "wall_seconds": round(time.perf_counter() - started, 1), "load_average_end": os.getloadavg(),
        "training_seconds": {r["version"]: read_version(store, r["version"]).seconds for r in rows},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "regime.json", out)
    say(f"wrote {(RESULTS / 'regime.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
