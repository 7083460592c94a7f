"""Datasets: CSV with a header, or JSON Lines of objects (spec section 13).

Reading never stops at a bad row: a record that cannot be read (bad JSON, a line that is
not an object, a CSV record with the wrong number of fields) becomes a :class:`Record`
carrying the reason and its line number, and the batch records it as a failed row.

Records are read with the standard ``csv`` and ``json`` modules because they report where
each record starts (a quoted CSV field may span lines); pandas gives the tables people
look at (:meth:`Dataset.frame`, previews, CSV exports of results).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import ValidationError

__all__ = ["FORMATS", "Dataset", "Record", "read_dataset"]

#: File name endings and the format each means.
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl"}


@dataclass(frozen=True)
class Record:
    """One data record: its fields, or why it could not be read."""

    row: int
    """Position among the dataset's records, from 0 (blank lines are not records)."""
    line: int | None
    """Line of the file where the record starts (1-based); None for rows given in Python."""
    data: dict[str, Any] | None = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"row {self.row}"


@dataclass
class Dataset:
    """Records read from a file, an upload or Python objects."""

    records: list[Record]
    columns: list[str] = field(default_factory=list)
    """The CSV header, or every key seen in JSON Lines, in first-seen order."""
    name: str | None = None
    format: str = "python"

    def __len__(self) -> int:
        return len(self.records)

    @property
    def malformed(self) -> list[Record]:
        return [r for r in self.records if r.error is not None]

    def frame(self, limit: int | None = None) -> Any:
        """The readable records as a pandas DataFrame (with ``row`` and ``line``)."""
        import pandas as pd

        recs = self.records if limit is None else self.records[:limit]
        data = [{"row": r.row, "line": r.line, **(r.data or {}), "error": r.error} for r in recs]
        cols = ["row", "line", *self.columns, "error"]
        return pd.DataFrame(data, columns=cols)


def _bad(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", errors=[{"path": path, "message": message}])


def read_dataset(
    source: str | Path | bytes | Iterable[Mapping[str, Any]] | Any,
    *,
    name: str | None = None,
    format: str | None = None,
) -> Dataset:
    """Read a dataset from a path, file bytes (an upload: ``name`` or ``format`` says which
    format), a pandas DataFrame, or an iterable of dicts. Raises ValidationError only when
    nothing can be read (no such file, unknown format, no CSV header)."""
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, Path)) and not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise _bad("data", f'no such file "{path}"')
        fmt = format or _format_of(path.name)
        return _parse(path.read_bytes(), fmt, name or path.name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        fmt = format or _format_of(name or "")
        return _parse(bytes(source), fmt, name)
    if hasattr(source, "to_dict") and hasattr(source, "columns"):  # a pandas DataFrame
        records = source.to_dict(orient="records")
        return from_objects(records, name=name, columns=[str(c) for c in source.columns])
    if isinstance(source, Iterable) and not isinstance(source, Mapping):
        return from_objects(list(source), name=name)
    kind = type(source).__name__
    raise _bad("data", f"expected a file path, file bytes, a DataFrame or a list of objects, not {kind}")


def _format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    raise _bad(
        "data",
        f'cannot tell the format of "{filename or "the upload"}": name it .csv (with a header) or .jsonl '
        "(one JSON object per line)",
    )


def _parse(raw: bytes, fmt: str, name: str | None) -> Dataset:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad("data", f"{name or 'the data'} is not UTF-8 text (byte {exc.start})") from None
    if fmt == "csv":
        return parse_csv(text, name=name)
    if fmt == "jsonl":
        return parse_jsonl(text, name=name)
    raise _bad("data", f'unknown format "{fmt}": use csv or jsonl')


def parse_csv(text: str, *, name: str | None = None) -> Dataset:
    """CSV with a header line; values stay strings."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records: list[Record] = []
    end = 0  # the last line the reader has consumed
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if reader.line_num == end:  # no progress: give up on the rest
                records.append(Record(len(records), start, error=f"line {start}: unreadable CSV ({exc})"))
                break
            end = reader.line_num
            if header is None:
                raise _bad("data", f"line {start}: the CSV header cannot be read ({exc})") from None
            records.append(Record(len(records), start, error=f"line {start}: unreadable CSV ({exc})"))
            continue
        end = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if header is None:
            header = [h.strip() for h in fields]
            dupes = sorted({h for h in header if header.count(h) > 1})
            if dupes or any(not h for h in header):
                what = f"repeats {', '.join(dupes)}" if dupes else "has an empty column name"
                raise _bad("data", f"line {start}: the CSV header {what}")
            continue
        if len(fields) != len(header):
            records.append(
                Record(
                    len(records),
                    start,
                    error=f"line {start}: expected {len(header)} fields (as in the header), found {len(fields)}",
                )
            )
            continue
        records.append(Record(len(records), start, data=dict(zip(header, fields, strict=True))))
    if header is None:
        raise _bad("data", f"{name or 'the CSV data'} is empty: it needs a header line and rows")
    return Dataset(records, header, name, "csv")


def parse_jsonl(text: str, *, name: str | None = None) -> Dataset:
    """One JSON object per line; blank lines are skipped."""
    records: list[Record] = []
    columns: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append(
                Record(len(records), number, error=f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})")
            )
            continue
        if not isinstance(value, dict):
            kind = "an array" if isinstance(value, list) else type(value).__name__
            records.append(Record(len(records), number, error=f"line {number}: expected a JSON object, found {kind}"))
            continue
        columns.update(dict.fromkeys(value))
        records.append(Record(len(records), number, data=value))
    return Dataset(records, list(columns), name, "jsonl")


def from_objects(
    objects: list[Any], *, name: str | None = None, columns: list[str] | None = None
) -> Dataset:
    """Rows given in Python (or as JSON in an HTTP request): each must be an object."""
    records: list[Record] = []
    seen: dict[str, None] = dict.fromkeys(columns or [])
    for i, value in enumerate(objects):
        if isinstance(value, Mapping):
            data = {str(k): _plain(v) for k, v in value.items()}
            seen.update(dict.fromkeys(data))
            records.append(Record(i, None, data=data))
        else:
            records.append(Record(i, None, error=f"row {i}: expected an object, found {type(value).__name__}"))
    return Dataset(records, list(seen), name, "python")


def _plain(value: Any) -> Any:
    """pandas' missing values (NaN) become None, so rows stay JSON."""
    if isinstance(value, float) and value != value:
        return None
    return value
