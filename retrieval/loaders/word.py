"""Word (.docx) files through python-docx: headings build the heading path, tables become Markdown."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import docx
from docx.document import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from .base import Block, LoadedDocument, LoaderError
from .formatting import markdown_table, megabytes

DAMAGED = "The DOCX file could not be read: it looks damaged or is not a Word document."
NO_TEXT = "The DOCX file has no text."
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# A .docx is a zip; a small upload can unpack to gigabytes ("zip bomb"), so the unpacked size is capped.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_LIST_STYLE_LEVEL = re.compile(r"(\d)$")


@dataclass(frozen=True)
class _Part:
    kind: Literal["title", "heading", "paragraph", "list_item", "table"]
    text: str
    level: int = 0


def load_docx(data: bytes, *, fallback_title: str) -> LoadedDocument:
    """Paragraphs, grouped list items and tables (as Markdown) of the document body, under their headings.

    The title comes from the document properties, else the first Title or Heading 1 paragraph, else
    `fallback_title`; a leading heading that repeats the title is not put into the heading paths.
    """
    _check_package(data)
    # python-docx raises whatever its XML handling meets in a malformed part (KeyError, ValueError, ...).
    try:
        document = docx.Document(io.BytesIO(data))
        core_title = document.core_properties.title or ""
        parts = list(_parts(document))
    except Exception as exc:
        raise LoaderError(DAMAGED) from exc
    title = " ".join(core_title.split()) or _first_title_like(parts) or fallback_title
    blocks = _blocks(parts, title)
    if not blocks:
        raise LoaderError(NO_TEXT)
    return LoadedDocument(title=title, blocks=blocks, content_type=CONTENT_TYPE)


def _check_package(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as exc:  # zipfile meets damage with BadZipFile, EOFError, NotImplementedError, ...
        raise LoaderError(DAMAGED) from exc
    if not any(member.filename == "[Content_Types].xml" for member in members):
        raise LoaderError(DAMAGED)
    if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
        raise LoaderError(f"The DOCX file unpacks to more than {megabytes(MAX_UNPACKED_BYTES)} MB.")


def _parts(document: Document) -> Iterator[_Part]:
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield _Part("table", markdown_table(_table_rows(item)))
        else:
            yield _paragraph_part(item)


def _paragraph_part(paragraph: Paragraph) -> _Part:
    text = paragraph.text.strip()
    style = paragraph.style.name if paragraph.style is not None else ""
    style = style or ""
    if style.casefold() == "title":
        return _Part("title", " ".join(text.split()))
    heading = _HEADING_STYLE.match(style)
    if heading:
        return _Part("heading", " ".join(text.split()), level=min(int(heading.group(1)), 6))
    if style.casefold().startswith("list"):
        # "List Bullet 2" is one level deeper than "List Bullet".
        depth = _LIST_STYLE_LEVEL.search(style)
        return _Part("list_item", text, level=int(depth.group(1)) - 1 if depth else 0)
    return _Part("paragraph", text)


def _table_rows(table: Table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def _first_title_like(parts: list[_Part]) -> str:
    for part in parts:
        if part.text and (part.kind == "title" or (part.kind == "heading" and part.level == 1)):
            return part.text
    return ""


def _blocks(parts: list[_Part], title: str) -> list[Block]:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    list_lines: list[str] = []
    seen_heading = False

    def flush_list() -> None:
        if list_lines:
            blocks.append(Block(text="\n".join(list_lines), heading_path=tuple(text for _, text in path)))
            list_lines.clear()

    for part in parts:
        if part.kind != "list_item" or not part.text:
            flush_list()
        if not part.text or part.kind == "title":
            continue
        if part.kind == "heading":
            # The document's own title, repeated as its first heading, would only add noise to every path.
            if not seen_heading and part.level == 1 and part.text == title:
                seen_heading = True
                continue
            seen_heading = True
            path = [entry for entry in path if entry[0] < part.level] + [(part.level, part.text)]
        elif part.kind == "list_item":
            list_lines.append(f"{'  ' * part.level}- {part.text}")
        else:
            blocks.append(Block(text=part.text, heading_path=tuple(text for _, text in path)))
    flush_list()
    return blocks
