"""A continual pre-training update killed and resumed, through the CLI as a user runs it.

Pre-trains a preset version on one synthetic corpus (`old`), then runs
`renewlm update v2 --from base --data new --replay 0.25` with a checkpoint every K steps, kills the
update with SIGKILL once its metrics show it a few steps past the first checkpoint, and runs the same
command again, which resumes from that checkpoint. Checks, and prints as a table:
- the update's loss falls (mean of its first logged window against its last);
- the checkpoint was written while training went on (the run logged steps past it before the kill);
- the resumed run repeats the steps between the checkpoint and the kill with the same losses
  (max |difference|; bitwise on CPU, within bf16 noise on CUDA where kernels are not deterministic);
- the version is written and records the resume.

    python benchmarks/cpt_resume.py --preset tiny --seq-len 128 --batch-tokens 2048 --pretrain-steps 20 --steps 40 \\
        --checkpoint-every 10                                        # CPU, a minute or two
    python benchmarks/cpt_resume.py --preset 1b --seq-len 2048 --batch-tokens 32768 --micro-batch 8    # one GPU

Writes benchmarks/results/cpt_resume.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from throughput import RESULTS, make_store


def renewlm(store: Path, *args: str) -> list[str]:
    """The `renewlm` command, run by this Python (the console script may not be on the PATH)."""
    return [sys.executable, "-m", "renewlm", *args, "--store", str(store)]


def losses(path: Path) -> dict[int, float]:
    out = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            out[record["step"]] = record["loss"]
    return out


def run(cmd: list[str], log: Path, env: dict) -> float:
    started = time.perf_counter()
    with log.open("a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        raise SystemExit(f"renewlm {cmd[3]} failed with exit {code}; see {log}")
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-tokens", type=int, default=2048)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--pretrain-steps", type=int, default=20)
    p.add_argument("--steps", type=int, default=100, help="the update's steps")
    p.add_argument("--checkpoint-every", type=int, default=40)
    p.add_argument("--kill-after", type=int, default=10, help="kill once the log is this many steps past the checkpoint")
    p.add_argument("--documents", type=int, default=2000, help="documents of each synthetic corpus")
    p.add_argument("--out", type=Path, default=RESULTS / "cpt_resume.json")
    p.add_argument("--keep", type=Path, help="keep the store here instead of a temporary folder")
    args = p.parse_args()

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    tmp = Path(tempfile.mkdtemp(prefix="cpt-resume-")) if args.keep is None else args.keep
    tmp.mkdir(parents=True, exist_ok=True)
    log = args.out.with_suffix(".log")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    result: dict = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    try:
        t = time.perf_counter()
        store = make_store(tmp, ("old", "new"), documents=args.documents)
        result["store_seconds"] = time.perf_counter() - t
        base = tmp / "base.yaml"
        base.write_text(json.dumps({
            "name": "base", "preset": args.preset, "tokenizer": "bench",
            "mixture": {"phases": [{"corpora": {"old": 1.0}}]},
            "schedule": {"name": "cosine", "peak_lr": 3e-4, "warmup_fraction": 0.1},
            "seq_len": args.seq_len, "batch_tokens": args.batch_tokens, "micro_batch": args.micro_batch,
            "steps": args.pretrain_steps, "eval_tokens": 4 * args.seq_len, "log_every": 5,
        }))
        result["pretrain_seconds"] = run(renewlm(store, "train", str(base)), log, env)
        update = renewlm(store, "update", "v2", "--from", "base", "--data", "new", "--replay", "0.25",
                         "--steps", str(args.steps), "--checkpoint-every", str(args.checkpoint_every),
                         "--micro-batch", str(args.micro_batch))
        metrics = store / "runs" / "v2" / "metrics.jsonl"
        checkpoint = store / "runs" / "v2" / "checkpoints" / f"step-{args.checkpoint_every:08d}" / "manifest.json"
        kill_at = args.checkpoint_every + args.kill_after
        started = time.perf_counter()
        with log.open("a") as f:
            f.write(f"$ {' '.join(update)}   (killed at step >= {kill_at})\n")
            f.flush()
            proc = subprocess.Popen(update, stdout=f, stderr=subprocess.STDOUT, env=env)
            while proc.poll() is None:
                logged = losses(metrics) if metrics.exists() else {}
                if checkpoint.exists() and logged and max(logged) >= kill_at:
                    proc.kill()  # SIGKILL: no handler runs, as when a machine dies
                    break
                time.sleep(0.2)
            proc.wait()
        if proc.returncode != -signal.SIGKILL:
            raise SystemExit(f"the update ended (exit {proc.returncode}) before it could be killed; see {log}")
        result["killed_run_seconds"] = time.perf_counter() - started
        before = losses(metrics)
        shutil.copy(metrics, tmp / "metrics-before-kill.jsonl")
        result["resumed_seconds"] = run(update, log, env)
        after = losses(metrics)
        version = json.loads((store / "versions" / "v2" / "version.json").read_text())
        repeated = [s for s in before if s > args.checkpoint_every]
        diffs = [abs(before[s] - after[s]) for s in repeated]
        steps = sorted(after)
        window = max(1, min(10, len(steps) // 4))
        first = sum(after[s] for s in steps[:window]) / window
        last = sum(after[s] for s in steps[-window:]) / window
        result.update({
            "device": version["device"], "steps_logged_before_kill": max(before),
            "checkpoint_step": args.checkpoint_every, "repeated_steps": len(repeated),
            "max_abs_loss_diff": max(diffs), "bitwise": max(diffs) == 0.0,
            "loss_first_window": first, "loss_last_window": last, "loss_falls": last < first,
            "resumed_at_steps": version.get("resumed_at_steps"), "heldout": version.get("losses"),
            "tokens_per_second": version["tokens"] / version["seconds"] if version.get("seconds") else None,
            "curve_before_kill": before, "curve_after_resume": after,
        })
        result["ok"] = bool(result["loss_falls"] and len(repeated) > 0 and result["resumed_at_steps"])
    finally:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"device: {result['device']['name']} × {result['device']['count']}; {args.preset}, seq {args.seq_len}, "
          f"batch {args.batch_tokens} tokens; pre-train {args.pretrain_steps} steps, update {args.steps} (25% replay)")
    print(f"checkpoint at step {args.checkpoint_every}, killed after step {result['steps_logged_before_kill']} logged, resumed at "
          f"{result['resumed_at_steps']}")
    print(f"steps repeated after the resume: {result['repeated_steps']}, max |loss difference| "
          f"{result['max_abs_loss_diff']:.3g} ({'bitwise' if result['bitwise'] else 'not bitwise'})")
    print(f"update loss: first window {first:.4f} -> last window {last:.4f}; held-out {result['heldout']}")
    print(f"wall: pre-train {result['pretrain_seconds']:.0f} s, update until killed {result['killed_run_seconds']:.0f} s, "
          f"resumed {result['resumed_seconds']:.0f} s; {'OK' if result['ok'] else 'FAILED'}")
    print(f"written: {args.out}")
    if not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
