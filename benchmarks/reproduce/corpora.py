"""The converged regime's data: four corpora of text any Debian machine with this project installed has or gets.

    python benchmarks/reproduce/corpora.py [--store DIR]      # resumable: a finished step is never redone

- `cv-prose` (the base's data): English prose about software: the docstrings (200+ characters) of every
  installed Python module (the standard library and the project's virtual environment) and the Python 3.11
  documentation (Debian package `python3.11-doc`, its HTML as text).
- `cv-man` (English prose on another subject): the Linux manual pages, sections 2-8 (Debian packages
  `manpages`, `manpages-dev`, formatted by groff).
- `cv-code`: Python source of the installed packages, one document per top-level definition.
  Which shift is weak and which strong is measured, not named: the base's loss gap on each
  (docs/results/regime.json) is larger on cv-man than on cv-code, whose identifiers the docstrings share.
- `cv-de` (a new language for the tokenizer, not in its training data): the German manual pages
  (`manpages-de`).

The Debian packages come by name (`apt-get download NAME`, then `dpkg -x`); on another system, download the
same .deb files from packages.debian.org (bookworm) and put them in STORE/sources/deb/ before running. Each
source's text is cached as JSON lines in STORE/sources/, written whole or not at all; the tokenizer (`cv`,
byte-level BPE, trained on the first three) and the corpora are made once. The token counts are printed and
written to docs/results/corpora.json.
"""

from __future__ import annotations

import ast
import gzip
import html.parser
import json
import os
import random
import subprocess
import sys
import sysconfig
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS, ROOT, say  # noqa: E402

from renewlm.data.corpus import Corpus  # noqa: E402
from renewlm.data.prepare import prepare  # noqa: E402
from renewlm.data.tokenizer import train_tokenizer  # noqa: E402
from renewlm.examples.demo import code_documents  # noqa: E402
from renewlm.store import Store, write_json  # noqa: E402

TOKENIZER = "cv"
PROSE, MAN, CODE, GERMAN = "cv-prose", "cv-man", "cv-code", "cv-de"
VOCAB = 4096
DEBS = ("python3.11-doc", "manpages", "manpages-dev", "manpages-de")
CODE_BYTES = 60_000_000  # of Python source: ≈20M tokens, more than any update reads
TOKENIZER_SAMPLE = 4000  # documents of each corpus the tokenizer learns from


def python_files() -> list[Path]:
    """Every .py file of the standard library and the installed packages, in a fixed order."""
    roots = sorted({Path(sysconfig.get_paths()[k]) for k in ("stdlib", "purelib", "platlib")})
    files: set[Path] = set()
    for root in roots:
        files.update(p for p in root.rglob("*.py") if "test" not in p.name and "tests" not in p.parts)
    return sorted(files)


def docstrings(files: list[Path]) -> list[str]:
    """Docstrings of 200+ characters, each once (many packages vendor the same modules)."""
    seen, docs = set(), []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError, RecursionError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 200 and doc not in seen:
                    seen.add(doc)
                    docs.append(doc)
    return docs


class _Text(html.parser.HTMLParser):
    """The visible text of one HTML page: paragraphs kept, navigation and scripts dropped."""

    SKIP = {"script", "style", "nav", "head"}
    BLOCK = {"p", "div", "li", "pre", "h1", "h2", "h3", "h4", "dt", "dd", "tr", "section", "br"}

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_documents(root: Path) -> list[str]:
    """One document per section of each documentation page (split at blank lines between headings)."""
    docs = []
    for path in sorted(root.rglob("*.html")):
        if path.parent.name in {"_static", "_sources"} or path.name in {"genindex.html", "search.html"} or path.name.startswith("genindex"):
            continue
        parser = _Text()
        parser.feed(path.read_text(encoding="utf-8", errors="replace"))
        lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
        text = "\n".join(line for line in lines if line)
        docs.extend(chunk for chunk in _chunks(text, 4000) if len(chunk) >= 200)
    return docs


def _chunks(text: str, size: int) -> list[str]:
    """Pieces of about `size` characters, cut at line ends."""
    out, current = [], []
    length = 0
    for line in text.splitlines():
        current.append(line)
        length += len(line) + 1
        if length >= size:
            out.append("\n".join(current))
            current, length = [], 0
    if current:
        out.append("\n".join(current))
    return out


def man_documents(root: Path, sections: tuple[str, ...]) -> list[str]:
    """Each manual page formatted by groff as plain UTF-8 text, cut into pieces of about 4000 characters. The
    pages are UTF-8: `-k` (preconv) reads them so, where groff alone would read Latin-1 ("fÃ¼r" for "für")."""
    docs = []
    for section in sections:
        for path in sorted((root / f"man{section}").glob("*.gz")):
            source = gzip.decompress(path.read_bytes())
            if source.startswith(b".so "):  # an alias of another page
                continue
            done = subprocess.run(
                ["groff", "-k", "-man", "-Tutf8", "-P-c", "-P-b", "-P-u", "-rLL=100n", "-Wall"],
                input=source, capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"}, timeout=60,
            )
            text = "\n".join(" ".join(line.split()) for line in done.stdout.decode("utf-8", "replace").splitlines())
            text = "\n".join(line for line in text.splitlines() if line)
            docs.extend(chunk for chunk in _chunks(text, 4000) if len(chunk) >= 200)
    return docs


def debian(sources: Path, packages: tuple[str, ...] = DEBS, folder: str = "deb") -> Path:
    """The Debian `packages`, downloaded by name into sources/FOLDER and unpacked once into sources/FOLDER/x."""
    deb, unpacked = sources / folder, sources / folder / "x"
    if (unpacked / ".done").exists():
        return unpacked
    deb.mkdir(parents=True, exist_ok=True)
    missing = [name for name in packages if not list(deb.glob(f"{name}_*.deb"))]
    if missing:
        subprocess.run(["apt-get", "download", *missing], cwd=deb, check=True)
    for path in sorted(deb.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(path), str(unpacked)], check=True)
    (unpacked / ".done").touch()
    return unpacked


def cached(path: Path, make) -> Path:
    """`make()`'s documents as JSON lines at `path`, written once (to a temporary name, then renamed)."""
    if not path.exists():
        docs = make()
        part = path.with_suffix(".part")
        with part.open("w") as f:
            for text in docs:
                f.write(json.dumps({"text": text}) + "\n")
        part.rename(path)
        say(f"{path.name}: {len(docs):,} documents, {path.stat().st_size / 1e6:.1f} MB")
    return path


def text_bytes(path: Path) -> int:
    """The UTF-8 bytes of the documents' text (the file's own size counts JSON's escapes: `ü` is 6 bytes there)."""
    with path.open() as f:
        return sum(len(json.loads(line)["text"].encode()) for line in f)


def sample(path: Path, out: Path, n: int, seed: int = 0) -> Path:
    lines = path.read_text().splitlines()
    random.Random(seed).shuffle(lines)
    out.write_text("\n".join(lines[:n]) + "\n")
    return out


def build(store: Store) -> dict:
    sources = store.root / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    x = debian(sources)
    files = python_files()
    jsonl = {
        PROSE: cached(sources / "prose.jsonl", lambda: docstrings(files) + html_documents(x / "usr/share/doc/python3.11/html")),
        # "-utf8": read with groff -k; a cache of the pages read as Latin-1 (man.jsonl, de.jsonl) is never reused
        MAN: cached(sources / "man-utf8.jsonl", lambda: man_documents(x / "usr/share/man", ("2", "3", "4", "5", "7", "8"))),
        CODE: cached(sources / "code.jsonl", lambda: code_documents(files, CODE_BYTES)),
        GERMAN: cached(sources / "de-utf8.jsonl", lambda: man_documents(x / "usr/share/man/de", ("1", "2", "3", "5", "7", "8"))),
    }
    if not store.exists("tokenizers", TOKENIZER):
        samples = [sample(jsonl[c], sources / f"tokenizer-{c}.jsonl", TOKENIZER_SAMPLE) for c in (PROSE, MAN, CODE)]
        train_tokenizer(store, TOKENIZER, samples, VOCAB)
    counts = {}
    for name, path in jsonl.items():
        if not store.exists("corpora", name):
            prepare(store, name, [path], TOKENIZER, val_fraction=0.01, min_heldout_tokens=100_000)
        corpus = Corpus.open(store, name, verify=False)
        counts[name] = {"train_tokens": corpus.train.num_tokens, "heldout_tokens": corpus.val.num_tokens, "text_bytes": text_bytes(path)}
        say(f"{name}: {counts[name]['train_tokens']:,} training tokens, {counts[name]['heldout_tokens']:,} held out")
    return counts


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, default=ROOT / ".reproduce-store" / "converged")
    args = p.parse_args()
    counts = build(Store(args.store))
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "corpora.json", {"tokenizer": TOKENIZER, "vocab_size": VOCAB, "corpora": counts})


if __name__ == "__main__":
    main()
