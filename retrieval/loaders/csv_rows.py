"""CSV files: one block per data row, as "Column: value" lines."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from .base import Block, LoadedDocument, LoaderError

_DELIMITERS = ",;\t|"
# The sniffer's regular expressions take quadratic time on some input (0.5 s for 16 KB of `a,"`);
# a few lines are enough to tell the delimiter.
_SNIFF_CHARS = 8 * 1024


def load_csv(text: str, *, title: str, columns: list[str] | None = None) -> LoadedDocument:
    """One Block per non-empty data row, `location` "row N" counting data rows from 1.

    `columns` picks which columns go into the text (all of them when None); a name that is not
    in the header raises LoaderError listing the columns there are.
    """
    reader = csv.reader(io.StringIO(text, newline=""), _sniff_dialect(text))
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise LoaderError("The CSV file has no rows.")
        names = _column_names(header)
        chosen = _chosen_columns(names, columns)
        blocks = list(_row_blocks(reader, names, chosen))
    except csv.Error as exc:
        raise LoaderError(f"The CSV file could not be read near line {reader.line_num}: {exc}.") from exc
    if not blocks:
        raise LoaderError("The CSV file has no rows with text in the chosen columns.")
    return LoadedDocument(
        title=title,
        blocks=blocks,
        content_type="text/csv",
        metadata={"columns": ", ".join(names[index] for index in chosen)},
    )


def _sniff_dialect(text: str) -> type[csv.Dialect]:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # a cut-off last line would skew the sniffer's counts
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
    except csv.Error:
        # One column, or too little to go by: take the delimiter the header line uses most, if any.
        header_line = sample.split("\n", 1)[0]
        delimiter = max(_DELIMITERS, key=header_line.count)
        return type("GuessedDialect", (csv.excel,), {"delimiter": delimiter if delimiter in header_line else ","})


def _row_blocks(rows: Iterator[list[str]], names: list[str], chosen: list[int]) -> Iterator[Block]:
    # Empty rows still count, so "row 7" is the seventh data row a spreadsheet shows under the header.
    for number, row in enumerate(rows, start=1):
        lines = [f"{names[index]}: {value}" for index in chosen if index < len(row) and (value := row[index].strip())]
        if lines:
            yield Block(text="\n".join(lines), location=f"row {number}")


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for position, cell in enumerate(header, start=1):
        name = cell.strip() or f"Column {position}"
        # Two "Notes" columns must stay apart, or csv_columns could not pick the second one.
        while name in taken:
            name = f"{name} ({position})"
        names.append(name)
        taken.add(name)
    return names


def _chosen_columns(names: list[str], wanted: list[str] | None) -> list[int]:
    if wanted is None:
        return list(range(len(names)))
    exact = {name: index for index, name in enumerate(names)}
    folded = {name.casefold(): index for index, name in reversed(list(enumerate(names)))}
    chosen: list[int] = []
    unknown: list[str] = []
    for name in wanted:
        index = exact.get(name, folded.get(name.strip().casefold()))
        if index is None:
            unknown.append(name)
        else:
            chosen.append(index)
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise LoaderError(f"Unknown CSV column{plural}: {', '.join(unknown)}. Available columns: {', '.join(names)}.")
    return chosen
