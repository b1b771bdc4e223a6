"""Text helpers the loaders share: whitespace, paragraphs, Markdown tables, titles from file names."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_BLANK_LINE = re.compile(r"\n[ \t\f\v]*\n")
_WHITESPACE = re.compile(r"\s+")
# Control characters other than whitespace (NUL among them: PostgreSQL cannot store it),
# lone surrogates (they cannot be encoded as UTF-8) and byte-order marks.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_control(text: str) -> str:
    """`text` without control characters, keeping tabs, line breaks and other whitespace."""
    return _CONTROL.sub("", text)


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs separated by blank lines, each stripped; empty ones are dropped."""
    return [paragraph for part in _BLANK_LINE.split(normalize_newlines(text)) if (paragraph := part.strip())]


def markdown_table(rows: list[list[str]]) -> str:
    """Render rows as a Markdown table, the first row as its header. Empty rows are dropped."""
    cleaned = [[_table_cell(cell) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    header, *body = [row + [""] * (width - len(row)) for row in cleaned]
    return "\n".join([_table_row(header), _table_row(["---"] * width), *(_table_row(row) for row in body)])


def _table_cell(text: str) -> str:
    # A "|" inside a cell would start a new column.
    return collapse_whitespace(text).replace("|", "\\|")


def _table_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def filename_stem(filename: str) -> str:
    """The file name without folders or extension; some browsers still send a full Windows path."""
    return PurePosixPath(filename.replace("\\", "/")).stem.strip()


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g}"
