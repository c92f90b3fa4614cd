"""The `renewlm` command line. It parses, calls the library and prints; it never computes."""

from __future__ import annotations

import os
import signal
import sys

import click

from renewlm.cli.app import Interrupted, app
from renewlm.errors import RenewError, disk_error

try:  # typer ≥ 0.20 ships its own copy of click, whose usage errors are not click's
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:
    _TyperClickException = click.ClickException

# Each module adds its commands to `app` when imported.
from renewlm.cli import data, demo, eval, mixture, plan, report, sample, schedule, soup, sweep, train, versions  # noqa: E402,F401


def _terminate(signum, frame):
    # `kill` (SIGTERM) unwinds like Ctrl-C, so temporary store entries are removed on the way out.
    raise KeyboardInterrupt


def _quiet_progress_bars() -> None:
    # transformers, huggingface_hub and lm-eval draw tqdm bars; in a log file or a pipe they are noise. The variable covers libraries not imported yet (and torchrun's workers).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # every other tqdm bar (lm-eval's, datasets')
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def main(argv: list[str] | None = None) -> None:
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        _quiet_progress_bars()
    previous = signal.signal(signal.SIGTERM, _terminate)
    said = ""
    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun every process fails alike: say it once
    try:
        code = app(args=argv, standalone_mode=False)
    except (RenewError, OSError) as e:
        error = e if isinstance(e, RenewError) else disk_error(e)  # a read-only or full disk met anywhere
        if error is None:
            raise
        if main_process:
            print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (click.ClickException, _TyperClickException) as e:  # usage errors: typer prints usage, exit 2
        e.show()
        sys.exit(e.exit_code)
    except Interrupted as e:
        code, said = 130, str(e)
    except (KeyboardInterrupt, click.Abort):
        code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == 130 and main_process:  # one sentence: the command's own (a run's stop) or the general one
        print(said or "interrupted; nothing half-written was kept", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else 0)
