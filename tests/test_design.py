"""The design held by tests: imports follow the layers of the design (a lower layer never imports a higher
one), no source file grows past 400 lines nor a function past 60, and the docs and the command line name the same flags."""

import ast
import re
from pathlib import Path

import typer.main

from renewlm.cli import app

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "renewlm"
# DESIGN.md's layers, lowest first; examples/ composes the library the way report/ does, below the CLI.
LAYERS = {
    "__init__": 1, "errors": 1, "config": 1, "store": 1, "lock": 1, "manifest": 1, "distributed": 1, "counts": 1,
    "console": 1, "data": 2, "optim": 2, "model": 2, "versions": 3, "eval": 3, "train": 4, "updates": 5,
    "merge": 5, "sweep": 5, "report": 6, "examples": 6, "cli": 7, "__main__": 7,
}
MOST_LINES = 400  # STYLE.md: past ~500 lines a file is two files; ours stop well before
MOST_FUNCTION_LINES = 60  # a function longer than a screen is several steps: name them
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
CALL = re.compile(r"(?<![\w./-])renewlm ((?:[a-z]+ ?)*)(.*)")


def _part(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(tree: ast.AST) -> set[str]:
    """The renewlm parts a module imports, at its top or inside a function."""
    names = set()
    for node in ast.walk(tree):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for module in modules:
            parts = module.split(".")
            if parts[0] == "renewlm":
                names.add(parts[1] if len(parts) > 1 else "__init__")
    return names


def test_imports_follow_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _part(path)
        for part in _imported(ast.parse(path.read_text())):
            if LAYERS[part] > LAYERS[own]:
                upward.append(f"{path.relative_to(PACKAGE)} (layer {LAYERS[own]}) imports renewlm.{part} (layer {LAYERS[part]})")
    assert not upward, upward
    assert {_part(p) for p in PACKAGE.rglob("*.py")} <= set(LAYERS)  # a new part gets its layer here


def test_no_source_file_is_two_files_long():
    long = {str(p.relative_to(ROOT)): n for p in sorted(PACKAGE.rglob("*.py")) if (n := len(p.read_text().splitlines())) > MOST_LINES}
    assert not long, long


def test_no_function_is_longer_than_a_screen():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (n := node.end_lineno - node.lineno + 1) > MOST_FUNCTION_LINES:
                long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert not long, long


def _commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), {o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}


def _code_lines(text: str):
    """The lines of code blocks (a continued line joined to its first) and the code spans of the prose."""
    for block in re.findall(r"```.*?```", text, re.S):
        lines = []
        for line in block.splitlines()[1:-1]:
            if lines and (lines[-1].endswith("\\") or (line[:1].isspace() and line.lstrip().startswith("["))):
                lines[-1] = lines[-1].rstrip("\\") + " " + line.strip()
            else:
                lines.append(line)
        yield from lines
    yield from re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))


def test_the_docs_and_the_commands_name_the_same_flags():
    commands = dict(_commands(typer.main.get_command(app)))
    wrong, files_of, flags_in = [], {}, {}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = list(_code_lines(doc.read_text()))
        flags_in[doc.name] = {flag for line in lines for flag in FLAG.findall(line)}
        for line in lines:
            for call in CALL.finditer(line):
                words = call.group(1).split()
                command = next((" ".join(words[:k]) for k in (2, 1) if " ".join(words[:k]) in commands), None)
                if command is None:
                    continue
                files_of.setdefault(command, set()).add(doc.name)
                wrong += [f"{doc.name}: renewlm {command} {flag}" for flag in FLAG.findall(call.group(2))
                          if flag not in commands[command] | {"--help"}]
    assert not wrong, f"flags in the docs that the command does not take: {wrong}"
    undocumented = [f"renewlm {command} {flag}" for command, flags in commands.items() for flag in sorted(flags - {"--help"}) if flag.startswith("--")
                    if not any(flag in flags_in[name] for name in files_of.get(command, ()))]
    assert not undocumented, f"flags no docs file of their command names in code: {undocumented}"
    assert set(commands) <= set(files_of), f"commands no docs show: {set(commands) - set(files_of)}"
