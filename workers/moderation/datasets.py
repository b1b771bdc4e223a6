"""Labelled text files for training and evaluating filters: CSV or JSONL, with the
text and label in named fields."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


class DatasetError(Exception):
    """The file cannot be read as asked; the message says why."""


@dataclass(frozen=True)
class Example:
    text: str
    positive: bool
    group: str = ""


def read_examples(
    path: Path,
    *,
    text_field: str = "text",
    label_field: str = "label",
    positive: str = "1",
    group_field: str = "",
    file_format: str = "",
) -> list[Example]:
    """Rows of a `.csv` or `.jsonl` file (or `file_format` "csv"/"jsonl"). A row whose label
    equals `positive` (compared as text) should be flagged or blocked."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    rows = read_rows(path, file_format=file_format)
    if not rows:
        raise DatasetError(f"{path}: no rows")
    for name in filter(None, (text_field, label_field, group_field)):
        if name not in rows[0]:
            raise DatasetError(f"{path}: no field {name!r} (fields: {', '.join(sorted(rows[0]))})")
    examples = [
        Example(
            text=str(row.get(text_field) or ""),
            positive=str(row.get(label_field)).strip() == positive,
            group=str(row.get(group_field) or "") if group_field else "",
        )
        for row in rows
    ]
    if not any(e.positive for e in examples):
        labels = sorted({str(row.get(label_field)) for row in rows})[:10]
        raise DatasetError(f"{path}: no row has {label_field}={positive!r} (labels seen: {', '.join(labels)})")
    return examples


def read_rows(path: Path, *, file_format: str = "") -> list[dict[str, object]]:
    """The rows of a `.jsonl`/`.ndjson` file (one JSON object a line) or of a CSV file with
    a header, as dicts; DatasetError says which line is wrong."""
    kind = file_format or ("jsonl" if path.suffix.lower() in {".jsonl", ".ndjson"} else "csv")
    return _jsonl_rows(path) if kind == "jsonl" else _csv_rows(path)


def _jsonl_rows(path: Path) -> list[dict[str, object]]:
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{number}: each line must be a JSON object")
            rows.append(row)
    return rows


def _csv_rows(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        try:
            return [dict(row) for row in csv.DictReader(handle)]
        except csv.Error as error:
            raise DatasetError(f"{path}: not CSV ({error})") from None
