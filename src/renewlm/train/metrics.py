"""What a run reports: `metrics.jsonl` always, TensorBoard when asked, and progress on the console.

One JSON object per line: training steps (`{"step", "tokens", "lr", "loss", "grad_norm", ...}`) and
evaluations (`{"step", "eval": {corpus: loss}}`). Only the main process writes. On resume, lines
past the checkpoint's step are dropped so the file always describes the run that continues.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class MetricsLog:
    def __init__(self, path: Path, *, enabled: bool, resume_step: int | None, tensorboard: Path | None = None):
        self.path = Path(path)
        self.enabled = enabled
        self._tb = None
        if not enabled:
            return
        if resume_step is None:
            self.path.write_text("")
        elif self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
            # An evaluation logged at the resume step is repeated by the resumed run.
            kept = [line for line in kept if not (json.loads(line)["step"] == resume_step and "eval" in json.loads(line))]
            self.path.write_text("".join(line + "\n" for line in kept))
        self._file = self.path.open("a")
        if tensorboard is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(tensorboard))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = record["step"]
            for key, value in record.items():
                if key == "eval":
                    for corpus, loss in value.items():
                        self._tb.add_scalar(f"heldout/{corpus}", loss, step)
                elif key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(f"train/{key}", value, step)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self._tb is not None:
                self._tb.close()


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


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
