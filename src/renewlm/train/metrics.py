"""What a run reports: `metrics.jsonl` always, experiment trackers when asked, and progress on the console.

One JSON object per line: training steps (`{"step", "tokens", "lr", "loss", "grad_norm", ...}`) and
evaluations (`{"step", "tokens", "eval": {corpus: loss}}`). Only the main process writes. On resume,
lines past the checkpoint's step are dropped so the file always describes the run that continues,
and so are lines that cannot be read: a process killed mid-write leaves a torn last line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from renewlm.console import Console
from renewlm.errors import disk_errors
from renewlm.train.trackers import Status, Tracker, open_trackers


class MetricsLog:
    """`metrics.jsonl` and the run's trackers (see trackers.py), written from the main process.

    `trackers` names them ("tensorboard", "wandb", "mlflow"); each writes under the run folder
    (`path`'s folder). `run_id` (the run's id from run.json) lets a resumed run continue the same
    tracker run; `config` (the run config as JSON-ready data) is logged to them once, at opening.
    After opening, `dropped_lines` counts the unreadable lines removed from an existing file on resume.
    """

    def __init__(
        self, path: Path, *, enabled: bool, resume_step: int | None, trackers: list[str] | tuple[str, ...] = (),
        run_id: str | None = None, config: dict | None = None,
    ):
        self.path = Path(path)
        self.enabled = enabled
        self.dropped_lines = 0
        self.trackers: list[Tracker] = []
        if not enabled:
            return
        names = list(trackers)
        folder = self.path.parent
        # Trackers first: a missing library stops the run before the file is touched.
        self.trackers = open_trackers(
            names, folder, run_id=run_id or folder.name, run_name=folder.name, resume_step=resume_step
        )
        try:
            for tracker in self.trackers:
                if config is not None:
                    tracker.log_config(config)
            if resume_step is None:
                self.path.write_text("")
            elif self.path.exists():
                self._truncate(resume_step)
            self._file = self.path.open("a")
        except BaseException:
            for tracker in self.trackers:
                tracker.close("failed")
            raise

    def _truncate(self, resume_step: int) -> None:
        lines, self.dropped_lines = _parse(self.path)
        # Evaluations logged at the resume step (any evaluator's: records without a training loss) are
        # repeated by the resumed run.
        kept = [
            line for line, record in lines
            if record["step"] < resume_step or (record["step"] == resume_step and "loss" in record)
        ]
        tmp = self.path.with_name(f".{self.path.name}.tmp")  # one writer per run folder: a fixed name
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)  # a kill while truncating leaves the old file, still readable

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        # A full disk stops the run here; its checkpoints are whole, and a resume drops the torn last line.
        with disk_errors(what=str(self.path), where=self.path.parent):
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        for tracker in self.trackers:
            if "loss" in record:  # a training step
                tracker.log_step(record)
                continue
            for name, numbers in record.items():  # an evaluation: one dict of numbers per evaluator
                if isinstance(numbers, dict):
                    tracker.log_evaluation(record["step"], numbers, name)

    def close(self) -> None:
        """Close the file and the trackers; called from a `finally`, it tells them how the run ended."""
        if not self.enabled:
            return
        # The loop raises KeyboardInterrupt after checkpointing on SIGINT/SIGTERM: a stop to resume later.
        error = sys.exc_info()[0]
        try:
            self._file.close()  # flushes what a failed write left in the buffer: on a full disk, fails again
        except OSError:
            if error is None:
                raise
        status: Status = "finished" if error is None else "stopped" if issubclass(error, KeyboardInterrupt) else "failed"
        for tracker in self.trackers:
            tracker.close(status)


def _parse(path: Path) -> tuple[list[tuple[str, dict]], int]:
    lines, dropped = [], 0
    # A kill can leave a partial line, or a block of NUL bytes after a crash; neither decodes as a record.
    for line in Path(path).read_bytes().decode("utf-8", errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            dropped += 1
            continue
        lines.append((line, record))
    return lines, dropped


def scan_metrics(path: Path) -> tuple[list[dict], int]:
    """The records of a `metrics.jsonl` and the number of lines that could not be read (and were skipped)."""
    lines, dropped = _parse(path)
    return [record for _, record in lines], dropped


def read_metrics(path: Path) -> list[dict]:
    """The readable records of a `metrics.jsonl` (a torn last line from a killed process is skipped)."""
    return scan_metrics(path)[0]


class ProgressDisplay:
    """A progress bar with ETA on a terminal, plain periodic lines otherwise; silent off the main process."""

    def __init__(self, *, total_steps: int, start_step: int, enabled: bool, log_every: int, title: str):
        self.enabled = enabled
        self.log_every = log_every
        self.total = total_steps
        self.console = Console(stderr=False, highlight=False)
        self.interactive = enabled and sys.stdout.isatty()
        self._last_line = time.monotonic()
        self._bar = None
        if self.interactive:
            self._bar = Progress(
                TextColumn(f"[bold]{title}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._bar.add_task(title, total=total_steps, completed=start_step, info="")
            self._bar.start()

    def step(self, record: dict) -> None:
        if not self.enabled:
            return
        info = f"loss {record['loss']:.4f} lr {record['lr']:.2e} {record['tokens_per_second']:,.0f} tok/s"
        if self._bar is not None:
            self._bar.update(self._task, completed=record["step"], info=info)
        elif record["step"] % self.log_every == 0 or record["step"] == self.total:
            self.console.print(f"step {record['step']}/{self.total} {info}")

    def evaluation(self, step: int, losses: dict[str, float]) -> None:
        self.print(f"held-out loss at step {step}: " + ", ".join(f"{c} {v:.4f}" for c, v in losses.items()))

    def print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
