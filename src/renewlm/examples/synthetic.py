"""A synthetic store for the report: version records, metrics.jsonl, evaluations.json and a sweep.json
shaped like the ones renewlm writes, with no training, so a store of 50 versions is made in a second.

Used by tests/report/ and benchmarks/report_screenshot.py. `add_synthetic(store, releases=K)` adds a
pre-trained base, a path-switching series of K releases (each with its trunk), a continued branch off
the first release, a soup of two releases, an import, and a sweep from the base: 2K + 5 versions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from renewlm.store import Store
from renewlm.versions import VersionRecord, build_record, write_record as write_version_record

FLOPS_PER_TOKEN = 3.0e6
TINY_CONFIG = {  # a Llama config small enough that `plan` prices it from config.json alone
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2,
    "max_position_embeddings": 2048, "tie_word_embeddings": True,
}


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def write_record(store: Store, name: str, *, config: dict | None = None, **fields) -> VersionRecord:
    tokens = fields.get("tokens", 0)
    record = build_record({
        "name": name, "parents": [], "kind": "release", "paradigm": None, "trunk": None,
        "model": {"architecture": "LlamaForCausalLM", "total": 100_000, "non_embedding": 60_000},
        "corpora": [], "corpus_tokens": {}, "data_tokens": tokens, "steps": tokens // 4096, "tokens": tokens,
        "flops": tokens * FLOPS_PER_TOKEN, "seq_len": 256, "losses": {}, "evaluations": {}, **fields,
    })
    folder = store.root / "versions" / name
    folder.mkdir(parents=True, exist_ok=True)
    write_version_record(folder, record)
    _write(folder / "config.json", config or TINY_CONFIG)
    return record


def write_metrics(store: Store, name: str, *, steps: int, tokens_per_step: int, corpora: list[str], new: str | None,
                  start: dict[str, float], peak_lr: float = 3e-4, eval_every: int = 20, decay: bool = True) -> None:
    """A warmup-cosine run (constant after the warmup with `decay=False`, as a trunk) whose held-out loss on the new corpus falls and on the old ones first rises
    (the stability gap) and then recovers part of the way."""
    lines = []
    for step in range(steps + 1):
        tokens = step * tokens_per_step
        frac = step / steps
        if step % eval_every == 0 or step == steps:
            losses = {}
            for c in corpora:
                if c == new:
                    losses[c] = start[c] - 0.9 * (1 - math.exp(-4 * frac))
                else:
                    losses[c] = start[c] + 0.35 * math.sin(math.pi * min(frac * 1.6, 1.0)) + 0.05 * frac
            lines.append({"step": step, "tokens": tokens, "eval": losses})
        if step:
            warm = min(1.0, step / (0.05 * steps))
            lr = peak_lr * warm * ((0.55 + 0.45 * math.cos(math.pi * frac)) if decay else 1.0)
            loss = 3.0 + 2.5 * math.exp(-5 * frac) + 0.08 * math.sin(step * 1.7)
            lines.append({"step": step, "tokens": tokens, "lr": lr, "loss": loss, "grad_norm": 1.0,
                          "tokens_per_second": 50_000.0, "seconds": 0.1, "skipped_steps": 0})
    path = store.root / "runs" / name / "metrics.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def sweep_record(parent: str, corpora: list[str]) -> dict:
    """A sweep.json shaped as renewlm.sweep.record writes it (docs/sweeps.md): per corpus an LR grid, the
    best LR repeated with other seeds, durations at the best LR, the characterization against the parent,
    and a mixture weighted by the best token counts of the corpora that help."""
    out = {"format": 1, "name": "pick-data", "parent": parent,
           "settings": {"parent": parent, "data": corpora, "lrs": [1e-5, 3e-5, 1e-4, 3e-4], "tokens": 2_000_000,
                        "durations": [500_000, 1_000_000, 2_000_000], "seed_repeats": 2},
           "corpora": {}, "progress": {"done": 0, "planned": 0}, "evaluations": {}}
    for i, c in enumerate(corpora):
        lrs = [{"lr": lr, "version": f"pick-data.{c}.lr{j}", "loss": 4.0 + 0.3 * (math.log10(lr) + 4 - 0.3 * i) ** 2}
               for j, lr in enumerate((1e-5, 3e-5, 1e-4, 3e-4))]
        best = min(lrs, key=lambda e: e["loss"])
        repeats = [{"seed": seed, "version": f"pick-data.{c}.seed{seed}", "loss": best["loss"] + 0.006 * seed} for seed in (1, 2)]
        durations = [{"tokens": t, "trunk": f"pick-data.{c}.trunk{j}", "version": f"pick-data.{c}.d{j}",
                      "loss": best["loss"] - 0.2 * math.log2(t / 5e5) + 0.02 * (t / 5e5) ** 1.5}
                     for j, t in enumerate((500_000, 1_000_000, 2_000_000))]
        best_d = min(durations, key=lambda e: e["loss"])
        helps = i % 2 == 0
        out["corpora"][c] = {
            "lrs": lrs, "best_lr": best["lr"], "repeats": repeats, "spread": 0.012, "durations": durations,
            "best_tokens": best_d["tokens"], "in_mixture": helps,
            "reason": "it helps its own held-out loss" if helps else "it hurts the lineage's held-out loss on c0",
            "cost": {"tokens": 2_300_000, "flops": 6.9e12, "independent_tokens": 3_800_000, "independent_flops": 1.14e13},
            "characterization": {
                f"heldout/{c}": {"parent": 5.1, "value": 4.7, "delta": -0.4, "spread": 0.012, "verdict": "helps"},
                "heldout/c0": {"parent": 3.2, "value": 3.2 + (0.005 if helps else 0.08), "delta": 0.005 if helps else 0.08,
                               "spread": 0.012, "verdict": "unchanged" if helps else "hurts"},
            },
        }
        out["progress"]["done"] += 9
        out["progress"]["planned"] += 9
    chosen = {c: e["best_tokens"] for c, e in out["corpora"].items() if e["in_mixture"]}
    out["suggested_mixture"] = {"phases": [{"corpora": chosen, "end": 1.0}], "replay": None, "max_epochs": {}}
    out["cost"] = {"tokens": 2_300_000 * len(corpora), "flops": 6.9e12 * len(corpora), "independent_tokens": 3_800_000 * len(corpora),
                   "independent_flops": 1.14e13 * len(corpora), "saving": 1 - 6.9 / 11.4,
                   "all_tokens": 12_000_000 * len(corpora), "all_flops": 3.6e13 * len(corpora)}
    return out


def add_synthetic(store: Store, releases: int = 3, *, steps: int = 200) -> list[str]:
    """Records, metrics and evaluations of 2·releases + 5 versions; returns their names in creation order."""
    names, clock = [], iter(range(10_000))

    def created() -> str:
        n = next(clock)
        return f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"

    corpora = ["c0"] + [f"c{i}" for i in range(1, releases + 1)]
    start = {c: 5.0 + 0.1 * i for i, c in enumerate(corpora)}
    write_record(store, "base", kind="pretrain", tokens=4_096_000, corpora=["c0"], corpus_tokens={"c0": 4_096_000},
                 created=created(), losses={"c0": 3.2})
    write_metrics(store, "base", steps=steps, tokens_per_step=4_096_000 // steps, corpora=["c0"], new="c0", start={"c0": 6.0})
    names.append("base")
    previous_trunk, previous_release = None, "base"
    for i in range(1, releases + 1):
        c, seen = f"c{i}", corpora[:i]
        trunk, release = f"r{i}-trunk", f"r{i}"
        write_record(store, trunk, kind="trunk", paradigm="switch", parents=[{"name": previous_trunk or previous_release, "weight": 1.0}],
                     tokens=1_024_000, data_tokens=972_800, corpora=[c, *seen], corpus_tokens={c: 972_800, "c0": 51_200},
                     created=created(), losses={x: 3.3 + 0.01 * i for x in [c, *seen]}, optimizer_state=True)
        write_metrics(store, trunk, steps=steps, tokens_per_step=1_024_000 // steps, corpora=[*seen, c], new=c, start=start,
                      decay=False)
        write_record(store, release, paradigm="switch", trunk=trunk, parents=[{"name": trunk, "weight": 1.0}],
                     tokens=102_400, data_tokens=0, corpora=[c, *seen], created=created(),
                     losses={x: 3.1 + 0.02 * i - 0.1 * (x == c) for x in [c, *seen]})
        write_metrics(store, release, steps=max(steps // 10, 2), tokens_per_step=102_400 // max(steps // 10, 2), corpora=[*seen, c],
                      new=c, start={x: 3.3 for x in [*seen, c]}, eval_every=5)
        names += [trunk, release]
        previous_trunk, previous_release = trunk, release
    write_record(store, "r1-more", paradigm="continue", parents=[{"name": "r1", "weight": 1.0}], tokens=512_000,
                 data_tokens=0, corpora=["c1"], created=created(), losses={"c0": 3.4, "c1": 2.9})
    write_metrics(store, "r1-more", steps=steps // 2, tokens_per_step=512_000 // (steps // 2), corpora=["c0", "c1"], new="c1", start=start)
    last = f"r{releases}"
    write_record(store, "soup", kind="soup", parents=[{"name": "r1", "weight": 0.5}, {"name": last, "weight": 0.5}],
                 tokens=0, data_tokens=0, flops=0.0, created=created())
    write_record(store, "imported", kind="import", tokens=0, flops=0.0, created=created())
    names += ["r1-more", "soup", "imported"]
    for v in ("base", "r1", last, "soup"):
        heldout = {c: {"loss": 3.0 + 0.05 * j + 0.01 * len(v), "perplexity": math.exp(3.0)} for j, c in enumerate(corpora)}
        for e in heldout.values():  # as `renewlm eval` records them, at 3.5 bytes a token
            e.update(bits_per_byte=e["loss"] / 3.5 / math.log(2), bytes_per_token=3.5)
        entry = {"format": 1, "heldout": heldout}
        if v != "base":
            entry["summary"] = {"updated_on": [corpora[-1]] if v == last else ["c1"], "adaptation": 0.41, "forgetting": 0.07}
            entry["tasks"] = {"hellaswag": {"acc": 0.31, "acc_norm": 0.33, "acc_norm_stderr": 0.01, "num_fewshot": 0, "limit": 100},
                              "my_qa": {"acc": 0.52, "limit": 100}}
            entry["core_average"] = {"core_average": (0.33 - 0.25) / 0.75, "categories": {}, "tasks": {}}
        _write(store.root / "versions" / v / "evaluations.json", entry)
    _write(store.root / "sweeps" / "pick-data" / "sweep.json", sweep_record("base", corpora[1:3]))
    return names
