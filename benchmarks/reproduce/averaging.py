"""Releases without a decay run: averaged trunk weights and an EMA against decayed branches of the same trunk.

From the converged base (regime.py's `cv-base`), a main path over four data releases, each a quarter of the
Python source (`cv-code-r1` ... `cv-code-r4`, split at document boundaries in the source's order, prepared
once with the `cv` tokenizer). Release k is one trunk update of `--steps` steps from the trunk before it
(release 1: from the base, warmup then the peak held; later ones: constant at the peak, AdamW state carried),
with 5% replay of its lineage (the base's data and the earlier releases), as `renewlm update --paradigm switch`
makes it. From each trunk update three releases are taken:

- `decay`: a branch of 10% of the update's steps decaying to 0 (renewlm's default `--release decay`);
- `window W`: the uniform average of the trunk's weights over its last W steps (`--release average
  --average-window W`; PMA, Li et al. 2025);
- `ema D`: the trunk run's exponential moving average with decay D (`ema: D`; WSM, Tian et al. 2025).

A trunk's training does not depend on the averages it keeps, so each variant (one window and one EMA
decay) is its own trunk chain, and the trunks of all variants should hold the same weights bit for bit (the
study checks and records it: `trunks_identical`); the decay branches are taken off variant 0's trunks. Two
seeds (the update's data order). Per release: held-out loss on the release's new data, on the base's data
(cv-prose) and on the earlier releases, tokens and FLOPs of each kind of release (the ledger's numbers).

    python benchmarks/reproduce/averaging.py [--steps 150] [--seeds 0 1] [--variants 0 1 2] [--later-seeds-variants 0]

Resumable: a finished run is never run again. Writes docs/results/averaging.json.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, ensure, heldout, machine, say  # noqa: E402
from corpora import PROSE, TOKENIZER  # noqa: E402
from regime import BASE, REGIME, default_store, require_converged  # noqa: E402
from stats import cell, difference, gap_cell, summary  # noqa: E402

from renewlm.data.prepare import prepare  # noqa: E402
from renewlm.store import Store, write_json  # noqa: E402
from renewlm.train.config import validate_run  # noqa: E402
from renewlm.train.run import ema_version_name  # noqa: E402
from renewlm.updates.request import UpdateRequest  # noqa: E402
from renewlm.updates.switch import branch_config  # noqa: E402
from renewlm.updates.update import update_config  # noqa: E402
from renewlm.versions import read_version  # noqa: E402

RELEASES = 4
CORPORA = [f"cv-code-r{k}" for k in range(1, RELEASES + 1)]
REPLAY = 0.05
DECAY_FRACTION = 0.1  # renewlm's default decay branch
WINDOWS = (0.1, 0.25, 0.5)  # of the update's steps; 0.1 is --average-window's default
EMAS = (0.95, 0.98, 0.99)  # half-lives of about 14, 34 and 69 steps


def release_corpora(store: Store) -> None:
    """The four releases: the source's documents (corpora.py's code.jsonl) in four contiguous quarters."""
    lines = (store.root / "sources" / "code.jsonl").read_text().splitlines()
    quarter = -(-len(lines) // RELEASES)
    for k, name in enumerate(CORPORA):
        if store.exists("corpora", name):
            continue
        part = store.root / "sources" / f"{name}.jsonl"
        part.write_text("\n".join(lines[k * quarter:(k + 1) * quarter]) + "\n")
        prepare(store, name, [part], TOKENIZER, val_fraction=0.01, min_heldout_tokens=50_000)


def names(variant: int, seed: int, k: int) -> dict[str, str]:
    prefix = f"av{variant}-s{seed}-r{k}"
    return {"trunk": f"{prefix}-trunk", "window": f"{prefix}-avg", "ema": ema_version_name(f"{prefix}-trunk"), "decay": f"{prefix}-dec"}


def trunk(store: Store, variant: int, seed: int, k: int, steps: int) -> dict:
    """Release k's trunk update of this variant (its window average and EMA kept on the fly), and, for
    variant 0, the decay branch off it."""
    n = names(variant, seed, k)
    parent = BASE if k == 1 else names(variant, seed, k - 1)["trunk"]
    request = UpdateRequest(name=n["trunk"], parent=parent, data=[CORPORA[k - 1]], replay=REPLAY, steps=steps, seed=seed,
                            **REGIME.run_shape())
    cfg = update_config(store, request, kind="trunk")
    window = max(1, round(WINDOWS[variant] * steps))
    cfg = validate_run({**cfg.model_dump(mode="json"), "average": {"release": n["window"], "steps": window}, "ema": EMAS[variant]},
                       f"trunk {n['trunk']}")
    ensure(store, cfg)
    if variant == 0:
        branch = branch_config(n["decay"], cfg, DECAY_FRACTION)
        ensure(store, validate_run({**branch.model_dump(mode="json"), "ema": None}, f"release {n['decay']}"))  # no EMA of a decay
    return {"window_steps": window, "ema": EMAS[variant]}


def weights_digest(store: Store, version: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(store.path("versions", version).glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cost(store: Store, version: str) -> dict:
    record = read_version(store, version)
    return {"tokens": record.tokens, "flops": record.flops}


def summarise(rows: list[dict]) -> dict:
    """Per release and kind of release: mean ± sd over seeds, and the paired difference to the same seed's decay branch."""
    by_release = {}
    for k in sorted({r["release"] for r in rows}):
        at = [r for r in rows if r["release"] == k]
        decay = {r["seed"]: r for r in at if r["kind"] == "decay"}
        by_kind = {}
        for kind in dict.fromkeys(r["kind"] for r in at):
            mine = [r for r in at if r["kind"] == kind]
            by_kind[kind] = {m: summary([r[m] for r in mine]) for m in ("new", "base_data")}
            # paired by seed: the same trunk's decay branch
            by_kind[kind]["minus_decay"] = {m: difference([r[m] for r in mine], [decay[r["seed"]][m] for r in mine], paired=True)
                                            for m in ("new", "base_data")}
        by_release[k] = by_kind
        for kind, s in by_kind.items():
            d = s["minus_decay"]
            say(f"release {k} {kind:>12}: new {cell(s['new'], 4)} ({gap_cell(d['new'], 4)} vs decay), "
                f"base data {cell(s['base_data'], 4)} ({gap_cell(d['base_data'], 4)})")
    return by_release


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150, help="steps of each release's trunk update (16,384 tokens each)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--variants", type=int, nargs="+", default=list(range(len(WINDOWS))), choices=range(len(WINDOWS)))
    p.add_argument("--later-seeds-variants", type=int, nargs="+", default=None, choices=range(len(WINDOWS)),
                   help="the variants of every seed after the first (default: --variants); the rest have the first seed only")
    args = p.parse_args()
    later = args.variants if args.later_seeds_variants is None else args.later_seeds_variants
    if 0 not in args.variants or 0 not in later:
        p.error("the variants must include 0: the decay branches, the baseline of every comparison, are taken off variant 0's trunks")

    def variants_of(seed: int) -> list[int]:
        return args.variants if seed == args.seeds[0] else [v for v in later if v in args.variants]

    started = time.perf_counter()
    store = default_store()
    check = require_converged(store)
    release_corpora(store)
    variants = {}
    for seed in args.seeds:
        for k in range(1, RELEASES + 1):
            for variant in variants_of(seed):
                variants[variant] = trunk(store, variant, seed, k, args.steps)
    rows, identical = [], True
    for seed in args.seeds:
        for k in range(1, RELEASES + 1):
            new, old = CORPORA[k - 1], [PROSE, *CORPORA[: k - 1]]
            kinds = {"trunk": names(0, seed, k)["trunk"], "decay": names(0, seed, k)["decay"]}
            for variant in variants_of(seed):
                kinds[f"window {variants[variant]['window_steps']}"] = names(variant, seed, k)["window"]
                kinds[f"ema {variants[variant]['ema']:g}"] = names(variant, seed, k)["ema"]
                identical &= weights_digest(store, names(variant, seed, k)["trunk"]) == weights_digest(store, kinds["trunk"])
            losses = heldout(store, list(kinds.values()), [new, *old])
            for kind, version in kinds.items():
                loss = losses[version]
                rows.append({"seed": seed, "release": k, "kind": kind, "version": version, "new": loss[new], "base_data": loss[PROSE],
                             "earlier": sum(loss[c] for c in old[1:]) / len(old[1:]) if k > 1 else None, **cost(store, version)})
    by_release = summarise(rows)
    say(f"trunks of all variants identical bit for bit: {identical}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "study": "averaging", "base": BASE, "regime": REGIME.__dict__, "convergence": check, "steps": args.steps,
        "seeds": args.seeds, "seeds_per_variant": {v: [s for s in args.seeds if v in variants_of(s)] for v in args.variants},
        "replay": REPLAY, "decay_fraction": DECAY_FRACTION, "variants": variants,
        "trunks_identical": identical, "rows": rows, "summary": by_release, "machine": machine(),
        "wall_seconds": round(time.perf_counter() - started, 1), "load_average_end": os.getloadavg(),
    }
    path = RESULTS / "averaging.json"
    write_json(path, out)
    say(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
