"""Off a terminal, lines and tables are printed whole, whatever their length; on one, rich wraps as usual."""

import io

from rich.table import Table

from renewlm.console import Console

SENTENCE = "resuming from the previous complete checkpoint " + "/a-long-folder" * 40 + "/step-00000004, instead"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def table() -> Table:
    t = Table(title="sweep")
    for column in ("corpus", "helps", "hurts"):
        t.add_column(column)
    t.add_row("code", "heldout-prose-and-more -0.123", "heldout-" + "x" * 300 + " +0.456")
    return t


def test_a_file_or_a_pipe_gets_whole_lines_and_whole_cells():
    out = io.StringIO()
    console = Console(file=out)
    console.print(SENTENCE)
    console.print(table())
    lines = out.getvalue().splitlines()
    assert lines[0] == SENTENCE
    assert any("heldout-prose-and-more -0.123" in line and "heldout-" + "x" * 300 + " +0.456" in line for line in lines)
    assert "…" not in out.getvalue()


def test_a_terminal_still_wraps_at_its_width():
    out = Terminal()
    console = Console(file=out, width=60, color_system=None)
    console.print(SENTENCE)
    console.print(table())
    assert SENTENCE not in out.getvalue() and max(map(len, out.getvalue().splitlines())) <= 60


def test_the_file_is_looked_up_at_each_print(monkeypatch):
    console = Console(width=60)  # no file: sys.stdout at print time, as the CLI's console
    piped = io.StringIO()
    monkeypatch.setattr("sys.stdout", piped)
    console.print(SENTENCE)
    assert piped.getvalue() == SENTENCE + "\n"
