"""What every reproduction shares: data from the standard library, sizes, resumable runs, results.

Data (the same on any machine with this Python): three corpora and one byte-level BPE tokenizer.
- `rp-prose-a`: English prose about most of the standard library (docstrings of 200+ characters and
  `pydoc_data.topics`, the language reference).
- `rp-prose-b`: prose about the internet, e-mail, markup and concurrency modules (WEAK_SHIFT_MODULES):
  the same kind of text on other subjects, a **weak** shift from A.
- `rp-code`: Python source: a **strong** shift from A.
`shift_table` shows that the shifts are what they are called: the loss gap of a model pre-trained on A.

Every study calls renewlm's library API only (the functions the CLI calls). Runs are resumable:
`ensure` skips a version that exists and resumes a run that has a checkpoint.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pydoc_data.topics

from renewlm.data.prepare import prepare
from renewlm.data.tokenizer import train_tokenizer
from renewlm.examples.demo import code_documents, stdlib_files
from renewlm.eval.compare import check, evaluate_versions
from renewlm.store import Store, write_json
from renewlm.train.config import RunConfig, validate_run
from renewlm.train.loop import train
from renewlm.versions import VersionRecord, list_versions, read_version

ROOT = Path(__file__).resolve().parents[2]
RESULTS = FIGURES = ROOT / "docs" / "results"  # JSON and plots beside each other, committed with docs/results.md
TOKENIZER = "rp"
PROSE_A, PROSE_B, CODE = "rp-prose-a", "rp-prose-b", "rp-code"
WEAK_SHIFT_MODULES = {
    "email", "http", "urllib", "xml", "xmlrpc", "smtplib", "wsgiref", "ftplib", "socketserver", "ssl", "socket",
    "cgi", "cgitb", "nntplib", "imaplib", "poplib", "mimetypes", "mailbox", "html", "webbrowser", "asyncio",
    "concurrent", "multiprocessing", "threading", "selectors", "queue", "sched", "tkinter", "turtle",
}


@dataclass(frozen=True)
class Size:
    """One scale of every study. `tiny` is the default: each study in minutes on 2 CPU cores."""

    preset: str
    vocab_size: int
    seq_len: int
    batch_tokens: int
    pretrain_steps: int  # pre-training on A
    update_steps: int  # one update (one release, one new data set)
    peak_lr: float
    code_bytes: int

    @property
    def micro_batch(self) -> int:
        return self.batch_tokens // self.seq_len

    def run_shape(self) -> dict:
        return {"seq_len": self.seq_len, "batch_tokens": self.batch_tokens, "micro_batch": self.micro_batch}


SIZES = {
    "tiny": Size("tiny", 4096, 128, 4096, 200, 100, 2e-3, 3_000_000),
    "small": Size("small", 8192, 256, 16384, 600, 300, 1e-3, 12_000_000),
    "125m": Size("125m", 32000, 1024, 2**19, 4000, 2000, 6e-4, 400_000_000),  # for a GPU
}


def arguments(description: str, extra=None):
    """The common command line: --store, --size, --seeds (and whatever `extra(parser)` adds)."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--store", type=Path, help="renewlm store for the data and versions (default: .reproduce-store/SIZE, shared by the studies)")
    p.add_argument("--size", choices=SIZES, default="tiny", help="model and run size (default tiny: minutes on 2 CPU cores)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the headline runs (default 0 1)")
    if extra:
        extra(p)
    args = p.parse_args()
    args.size_name, args.size = args.size, SIZES[args.size]
    args.store = Store(args.store or ROOT / ".reproduce-store" / args.size_name)
    build_data(args.store, args.size)
    return args


def say(line: str) -> None:
    print(line, flush=True)


# --- data -------------------------------------------------------------------------------------------------


def prose_groups(files: list[Path]) -> tuple[list[str], list[str]]:
    """Docstrings of 200+ characters, split by module: (A: the rest + the language reference, B: WEAK_SHIFT_MODULES)."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    a = [text for _, text in sorted(pydoc_data.topics.topics.items())]
    b: list[str] = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        group = b if path.relative_to(root).parts[0].removesuffix(".py") in WEAK_SHIFT_MODULES else a
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200:
                    group.append(doc)
    return a, b


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with path.open("w") as f:
        for text in texts:
            f.write(json.dumps({"text": text}) + "\n")
    return path


def build_data(store: Store, size: Size) -> None:
    """The tokenizer and the three corpora, once per store."""
    if all(store.exists("corpora", c) for c in (PROSE_A, PROSE_B, CODE)):
        return
    files = stdlib_files()
    a, b = prose_groups(files)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            PROSE_A: write_jsonl(Path(tmp) / "a.jsonl", a),
            PROSE_B: write_jsonl(Path(tmp) / "b.jsonl", b),
            CODE: write_jsonl(Path(tmp) / "code.jsonl", code_documents(files, size.code_bytes)),
        }
        train_tokenizer(store, TOKENIZER, list(paths.values()), size.vocab_size, overwrite=True)
        for name, path in paths.items():
            corpus = prepare(store, name, [path], TOKENIZER, val_fraction=0.05, min_heldout_tokens=40_000, overwrite=True)
            say(f"corpus {name}: {corpus.train.num_tokens:,} training tokens, {corpus.val.num_tokens:,} held out")


# --- runs -------------------------------------------------------------------------------------------------


def ensure(store: Store, cfg: RunConfig) -> VersionRecord:
    """The version `cfg.name`: read if it exists, otherwise trained (resuming its checkpoint if any)."""
    if store.exists("versions", cfg.name):
        return read_version(store, cfg.name)
    started = time.perf_counter()
    try:
        info = train(cfg, store)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the run checkpointed where it was
        say(f"stopped during {cfg.name}; run the same command again to resume")
        raise SystemExit(130) from None
    say(f"  {cfg.name}: {info['steps']} steps in {time.perf_counter() - started:.0f} s")
    return read_version(store, cfg.name)


def pretrain_config(name: str, size: Size, corpora: dict[str, float], *, steps: int | None = None, seed: int = 0, schedule: dict | None = None) -> RunConfig:
    """A run file for the size's preset from random weights."""
    return validate_run(
        {
            "name": name, "preset": size.preset, "tokenizer": TOKENIZER,
            "mixture": {"phases": [{"corpora": corpora}]},
            "schedule": schedule or {"name": "cosine", "peak_lr": size.peak_lr},
            "steps": steps or size.pretrain_steps, "seed": seed, **size.run_shape(),
        },
        name,
    )


BASE = "rp-a"


def base(store: Store, size: Size) -> VersionRecord:
    """The model every study starts from: the size's preset pre-trained on A (cosine, seed 0)."""
    return ensure(store, pretrain_config(BASE, size, {PROSE_A: 1.0}))


def heldout(store: Store, versions: list[str], corpora: list[str]) -> dict[str, dict[str, float]]:
    """Held-out loss of each version on each corpus (renewlm eval's numbers, same evaluation for all)."""
    plan = check(store, versions, corpora=corpora)
    result = evaluate_versions(store, plan)
    return {v: {c: e["loss"] for c, e in result["versions"][v]["heldout"].items()} for v in versions}


def shift_table(store: Store, parent: str) -> dict[str, float]:
    """The parent's loss on each corpus: the size of the shift from A to B (weak) and to code (strong)."""
    losses = heldout(store, [parent], [PROSE_A, PROSE_B, CODE])[parent]
    return {"loss": losses, "gap_weak": losses[PROSE_B] - losses[PROSE_A], "gap_strong": losses[CODE] - losses[PROSE_A]}


# --- results ----------------------------------------------------------------------------------------------


def mean_spread(values: list[float]) -> dict[str, float]:
    """Mean and half the range over seeds (the spread the tables print as ±)."""
    return {"mean": sum(values) / len(values), "spread": (max(values) - min(values)) / 2, "values": values}


def write_results(study: str, args, payload: dict, started: float) -> Path:
    """docs/results/STUDY.json of a first-attempt study: its numbers, its size, machine and wall time."""
    fields = {"study": study, "size": args.size_name, "settings": asdict(args.size), "seeds": args.seeds, **payload}
    return write_study(study, args.store, started, fields)


def write_study(study: str, store: Store, started: float, fields: dict) -> Path:
    """docs/results/STUDY.json: `fields` beside the machine, this invocation's wall time (a rerun that trains
    nothing only evaluates) and, whatever the reruns, the seconds the study's versions spent in training steps,
    from their records, and the load average at the end."""
    out = {
        **fields, "machine": machine(), "wall_seconds": round(time.perf_counter() - started, 1),
        "training_seconds": training_seconds(store, study), "load_average_end": os.getloadavg(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{study}.json"
    write_json(path, out)
    say(f"wrote {path.relative_to(ROOT)}")
    return path


def training_seconds(store: Store, study: str) -> float:
    """Seconds in training steps of every version of study `sNN_...` or `cNN_...` (named `sN-...`, `cN-...`)."""
    prefix = f"{study[0]}{int(study[1:3])}-"
    return round(sum(m.seconds or 0 for m in list_versions(store) if m.name.startswith(prefix)), 1)


def figure_path(study: str) -> Path:
    FIGURES.mkdir(parents=True, exist_ok=True)
    return FIGURES / f"{study}.png"


def save_figure(fig, path: Path) -> None:
    """Lay out, write (120 dpi) and close a study's figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    say(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def machine() -> dict:
    import platform

    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    return {"device": device, "python": sys.version.split()[0], "torch": torch.__version__, "platform": platform.platform()}
