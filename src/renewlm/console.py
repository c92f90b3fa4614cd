"""The console every renewlm message goes through: rich's own on a terminal, whole lines anywhere else.

Off a terminal rich wraps text and squeezes tables to 80 columns, so a log file or a pipe got sentences
broken mid-way (a long checkpoint path split a note over two lines) and table cells cut to `heldou…`.
A file or a pipe has no width: there every line is printed whole and a table as wide as its cells.
"""

from __future__ import annotations

import rich.console
from rich.console import ConsoleDimensions

# Wider than any line renewlm prints; a table still takes only the width its cells need (no `expand`).
UNWRAPPED_WIDTH = 1_000_000


class Console(rich.console.Console):
    """`rich.console.Console` that does not wrap when the file it writes to (looked up at each print,
    as rich does: sys.stdout may be replaced) is not a terminal. FORCE_COLOR keeps colours, not wrapping."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if _is_tty(self.file) else ConsoleDimensions(UNWRAPPED_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        rich.console.Console.size.fset(self, new_size)


def _is_tty(file) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
