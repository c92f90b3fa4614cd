"""Raw inputs, read as a stream of work units so memory does not grow with the input.

JSON lines (also in `.json`, `.gz`, `.zst`) are cut into byte chunks on line boundaries and parsed
by the tokenizing workers; parquet, csv and saved datasets are read in record batches with pyarrow
(or `datasets`); text files are one document each, or one per blank-line-separated paragraph.
A `.json` file holding one JSON array cannot be streamed without a streaming parser: it is read whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from renewlm.errors import InputError

CHUNK_BYTES = 1 << 20
CSV_BLOCK_BYTES = 16 << 20
BATCH_DOCS = 2048
FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".txt": "txt"}
COMPRESSIONS = (".gz", ".zst")


@dataclass
class Unit:
    """A piece of input for one worker: raw JSON-lines bytes, or texts already read."""

    source: str
    first_line: int  # 1-based line (jsonl) or record number of the first document
    lines: bytes | None = None
    texts: list[str] | None = None
    replaced: int = 0  # invalid UTF-8 sequences already replaced while reading `texts`


def file_format(path: Path, forced: str | None = None) -> str | None:
    """jsonl, json, parquet, csv, txt or dataset (a `save_to_disk` folder); None if unknown.
    `forced` (from `--format`) is the format of every file, whatever its name."""
    if path.is_dir():
        return "dataset" if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file() else None
    if forced is not None:
        return forced
    suffixes = path.suffixes
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def check_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FORMATS.values():
        raise InputError(f"--format {fmt!r} is not one of {', '.join(FORMATS.values())}; pass one of those")
    return fmt


def expand(paths: list[str | Path], fmt: str | None = None) -> tuple[list[Path], int, int]:
    """Input files and datasets in a stable order, how many files in folders were skipped (of another
    format, or empty; an empty file named on its own is refused by `prepare`), and how many links in
    folders were skipped because they lead outside the folder (to `/etc/passwd`, say)."""
    check_format(fmt)
    if not paths:
        raise InputError("no input given; pass --input PATH (a file or folder) at least once")
    out, skipped, outside = [], 0, 0
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"input {path} does not exist; check the path")
        kind = file_format(path, fmt)
        if kind is not None:
            out.append(path)
        elif path.is_dir():
            datasets = []
            inside = path.resolve()
            for child in sorted(path.rglob("*")):  # rglob does not descend into linked folders
                if any(p.startswith(".") for p in child.relative_to(path).parts) or any(d in child.parents for d in datasets):
                    continue
                if child.is_symlink() and not child.resolve().is_relative_to(inside):
                    outside += 1  # a folder given as input is read for what it holds, not for what it points at
                    continue
                kind_ = file_format(child, fmt)
                if child.is_dir() and kind_ == "dataset":
                    datasets.append(child)
                    out.append(child)
                elif child.is_file() and kind_ and child.stat().st_size > 0:
                    out.append(child)
                elif child.is_file():  # another format, or empty (an empty __init__.py in a source tree)
                    skipped += 1
        else:
            raise InputError(
                f"input {path} has an unknown format; name it .jsonl, .json, .parquet, .csv or .txt "
                f"(optionally .gz or .zst), or pass --format (e.g. --format txt)"
            )
    if not out:
        raise InputError(f"no readable input files under {', '.join(map(str, paths))}; use .jsonl, .json, .parquet, .csv or .txt")
    return out, skipped, outside


def open_binary(path: Path):
    if path.suffix in COMPRESSIONS:
        return io.BufferedReader(_Decompressed(path), buffer_size=CHUNK_BYTES)
    return path.open("rb")


class _Decompressed(io.RawIOBase):
    """A .gz or .zst file's content, whose damage (truncation, a bad CRC, corrupt blocks) is an
    InputError naming the file rather than a library's EOFError or OSError mid-way through prepare.
    zstd is read frame by frame with a decompressobj because its stream reader returns a truncated
    frame's first half without a word."""

    def __init__(self, path: Path):
        self.path, self.kind = path, path.suffix[1:]
        self._file = path.open("rb")
        self._gzip = gzip.GzipFile(fileobj=self._file) if self.kind == "gz" else None
        self._zstd, self._out = None, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        import zstandard

        try:
            data = self._gzip.read(len(buffer)) if self._gzip else self._read_zstd(len(buffer))
        except EOFError:
            raise InputError(f"{self.path} is truncated (its {self.kind} stream ends early); copy or compress the file again") from None
        except (OSError, zlib.error, zstandard.ZstdError) as e:
            raise InputError(f"{self.path} is a damaged {self.kind} file ({one_line(e)}); copy or compress the file again") from None
        buffer[: len(data)] = data
        return len(data)

    def _read_zstd(self, size: int) -> bytes:
        import zstandard

        while len(self._out) < size:
            chunk = self._file.read(1 << 16)
            if not chunk:
                if self._zstd is not None and not self._zstd.eof:
                    raise EOFError
                break
            while chunk:
                if self._zstd is None or self._zstd.eof:
                    self._zstd = zstandard.ZstdDecompressor().decompressobj()
                self._out += self._zstd.decompress(chunk)
                chunk = self._zstd.unused_data if self._zstd.eof else b""
        data, self._out = self._out[:size], self._out[size:]
        return data

    def close(self) -> None:
        if self._gzip:
            self._gzip.close()
        self._file.close()
        super().close()


def units(path: Path, text_field: str, split_blank_lines: bool, fmt: str | None = None) -> Iterator[Unit]:
    kind = file_format(path, fmt)
    if kind in ("jsonl", "json"):
        yield from _json_units(path, text_field, kind)
    elif kind == "parquet":
        yield from _parquet_units(path, text_field)
    elif kind == "csv":
        yield from _csv_units(path, text_field)
    elif kind == "txt":
        yield from _txt_units(path, split_blank_lines)
    elif kind == "dataset":
        yield from _dataset_units(path, text_field)


def _json_units(path: Path, text_field: str, kind: str) -> Iterator[Unit]:
    with open_binary(path) as f:
        head = f.read(CHUNK_BYTES)
        if kind == "json" and head.lstrip()[:1] == b"[":
            counter = [0]
            try:
                records = json.loads(decode(head + f.read(), counter))
            except json.JSONDecodeError as e:
                raise InputError(f"{path} is not valid JSON ({one_line(e)}); fix the file or write it as JSON lines") from None
            except RecursionError:
                raise InputError(f"{path} nests JSON deeper than can be parsed; flatten its records") from None
            for i in range(0, len(records), BATCH_DOCS):
                texts = [field_text(r, text_field, str(path), i + k + 1, "record") for k, r in enumerate(records[i : i + BATCH_DOCS])]
                yield Unit(str(path), i + 1, texts=texts, replaced=counter[0] if i == 0 else 0)
            return
        line, rest, block = 1, [], head
        while block:
            cut = block.rfind(b"\n") + 1
            if cut:  # whole lines go out; a line cut by the chunk waits for the next block
                buf = b"".join([*rest, block[:cut]])
                yield Unit(str(path), line, lines=buf)
                line += buf.count(b"\n")
                rest = []
            if cut < len(block):  # kept as a list: a 50 MB line costs no 50 re-copies of itself
                rest.append(block[cut:])
            block = f.read(CHUNK_BYTES)
        if rest:
            yield Unit(str(path), line, lines=b"".join(rest))


def _parquet_units(path: Path, text_field: str) -> Iterator[Unit]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError and others for a damaged file
        raise InputError(f"{path} is not a readable parquet file ({one_line(e)}); check or rewrite the file") from None
    _check_columns(path, pf.schema_arrow.names, text_field)
    _check_text_type(path, text_field, pf.schema_arrow.field(text_field).type)
    n = 1
    try:
        for batch in pf.iter_batches(batch_size=BATCH_DOCS, columns=[text_field]):
            yield _records_unit(path, n, batch.column(0).to_pylist())
            n += batch.num_rows
    except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
        raise InputError(f"{path} is not a readable parquet file after record {n} ({one_line(e)}); check or rewrite the file") from None


def _csv_units(path: Path, text_field: str) -> Iterator[Unit]:
    import pyarrow as pa
    import pyarrow.csv as pc

    # The text column is read as bytes so invalid UTF-8 is replaced and counted (as for every
    # format) rather than failing the whole file. A record must fit in one block: 16 MB.
    try:
        reader = pc.open_csv(
            open_binary(path),
            read_options=pc.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pc.ConvertOptions(column_types={text_field: pa.binary()}),
        )
    except pa.ArrowInvalid as e:
        raise InputError(f"{path} is not a readable CSV file ({one_line(e)}); check its header and quoting") from None
    _check_columns(path, reader.schema.names, text_field)
    n = 1
    try:
        for batch in reader:
            values = batch.column(text_field).to_pylist()
            for i in range(0, len(values), BATCH_DOCS):
                yield _records_unit(path, n + i, values[i : i + BATCH_DOCS])
            n += len(values)
    except pa.ArrowInvalid as e:
        raise InputError(
            f"{path} could not be read as CSV after record {n} ({one_line(e)}); check its quoting "
            f"(documents over {CSV_BLOCK_BYTES >> 20} MB need JSON lines or parquet)"
        ) from None


def _txt_units(path: Path, split_blank_lines: bool) -> Iterator[Unit]:
    if not split_blank_lines:
        counter = [0]
        with open_binary(path) as f:
            text = decode(f.read(), counter)
        yield Unit(str(path), 1, texts=[text], replaced=counter[0])
        return
    with open_binary(path) as f:
        reader = io.TextIOWrapper(f, encoding="utf-8", errors="renewlm-count", newline="")
        docs, para, n, seen = [], [], 1, _replaced[0]
        for line in reader:
            if line.strip():
                para.append(line)
                continue
            if para:
                docs.append("".join(para).rstrip("\n"))
                para = []
            if len(docs) >= BATCH_DOCS:
                yield Unit(str(path), n, texts=docs, replaced=_replaced[0] - seen)
                seen, n, docs = _replaced[0], n + len(docs), []
        if para:
            docs.append("".join(para).rstrip("\n"))
        if docs:
            yield Unit(str(path), n, texts=docs, replaced=_replaced[0] - seen)


def _dataset_units(path: Path, text_field: str) -> Iterator[Unit]:
    import datasets

    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
        raise InputError(
            f"{path} holds several splits ({', '.join(splits)}); pass one of them, e.g. {path / (splits[0] if splits else 'train')}"
        )
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # a damaged folder raises anything from FileNotFoundError to ArrowInvalid
        raise InputError(f"{path} is not a readable saved dataset ({one_line(e)}); save it again with save_to_disk") from None
    _check_columns(path, ds.column_names, text_field)
    _check_text_type(path, text_field, ds.data.schema.field(text_field).type)
    n = 1
    for batch in ds.select_columns([text_field]).iter(batch_size=BATCH_DOCS):
        values = batch[text_field]
        yield _records_unit(path, n, values)
        n += len(values)


def _records_unit(path: Path, first: int, values: list) -> Unit:
    """A unit of column values: text, bytes (decoded here, invalid UTF-8 replaced) or None (empty)."""
    counter = [0]
    texts = [v if isinstance(v, str) else decode(v, counter) if v is not None else "" for v in values]
    return Unit(str(path), first, texts=texts, replaced=counter[0])


def _check_text_type(path: Path, text_field: str, arrow_type) -> None:
    import pyarrow as pa

    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary, pa.types.is_null)
    if not any(is_kind(arrow_type) for is_kind in kinds) and str(arrow_type) not in ("string_view", "binary_view"):
        raise InputError(f"{path}: column {text_field!r} holds {arrow_type}, not text; pass --text-field with a text column")


def one_line(error: BaseException) -> str:
    """A library's error message on one line (pyarrow's span several, quoting the bad record)."""
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _check_columns(path: Path, names: list[str], text_field: str) -> None:
    if text_field not in names:
        raise InputError(
            f"{path} has no field {text_field!r} (it has: {', '.join(names)}); pass --text-field with one of those"
        )


def field_text(record: object, text_field: str, source: str, number: int, what: str = "line") -> str:
    if not isinstance(record, dict):
        raise InputError(f"{source} {what} {number} is a JSON {type(record).__name__}, not an object; each record must be an object with a {text_field!r} field")
    try:
        text = record[text_field]
    except KeyError:
        raise InputError(
            f"{source} {what} {number} has no field {text_field!r} (it has: {', '.join(map(str, record)) or 'no fields'}); "
            f"pass --text-field with one of those"
        ) from None
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError(f"{source} {what} {number}: field {text_field!r} is a {type(text).__name__}, not text; choose a text field")
    return text


# Invalid UTF-8 is replaced by U+FFFD and counted, not fatal: crawled text often has a few bad bytes.
_replaced = [0]


def _count_and_replace(error: UnicodeDecodeError):
    _replaced[0] += 1
    return "\ufffd", error.end


codecs.register_error("renewlm-count", _count_and_replace)


def decode(data: bytes, counter: list[int]) -> str:
    """UTF-8 text of `data`; each invalid sequence becomes U+FFFD and adds 1 to counter[0]."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        before = _replaced[0]
        text = data.decode("utf-8", errors="renewlm-count")
        counter[0] += _replaced[0] - before
        return text


def parse_lines(unit: Unit, text_field: str, counter: list[int]) -> list[str]:
    """Texts of a JSON-lines chunk (blank lines skipped)."""
    text = decode(unit.lines, counter)
    if unit.first_line == 1:
        text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows tools write
    out = []
    for k, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{unit.source} line {unit.first_line + k} is not valid JSON ({e.msg}); fix or remove that line") from None
        except RecursionError:
            raise InputError(f"{unit.source} line {unit.first_line + k} nests JSON deeper than can be parsed; flatten that record") from None
        out.append(field_text(record, text_field, unit.source, unit.first_line + k))
    return out


def unit_texts(unit: Unit, text_field: str, counter: list[int]) -> list[str]:
    """The unit's documents; counter[0] grows by the invalid UTF-8 sequences replaced in them."""
    if unit.texts is not None:
        counter[0] += unit.replaced
        return unit.texts
    return parse_lines(unit, text_field, counter)
