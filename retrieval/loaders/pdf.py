"""PDF files through pypdf: blocks per page located at "page N", under the headings found
by font size, and a title from the metadata or the first heading.

A PDF has no structure to read headings from, only text drawn at sizes. A line set
clearly larger than the body text is a heading (bigger sizes are outer levels); the
first one on the first page names the document when the metadata has no real title
(authoring tools fill it with "Microsoft Word - x.docx", "untitled" or a file name).
Without font sizes to go by, a short first line that does not read as a sentence is
taken as the heading. Either way the heading is kept out of the body text: running it
into the first paragraph would make the paragraph's first sentence "Refund policy
Refunds take five days".

A long PDF is read in batches of PAGES_PER_CALL pages, each one call (`Call`): in the
parser child each batch gets its own CPU allowance, so a 1,000-page manual is read
instead of outrunning a limit set for one file, and progress is reported per batch
(docs/decisions.md 38). Headings and the title need every page's font sizes, so the
pages are put together into a document only once all are read (`pdf_document`).
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pypdf import PageObject, PasswordType, PdfReader
from pypdf.generic import ByteStringObject, create_string_object

from .base import Block, Call, LoadedDocument, LoaderError, ProgressCallback, call_here
from .formatting import collapse_whitespace, split_paragraphs, strip_control

DAMAGED = "The PDF could not be read: it looks damaged or is not a PDF."
PASSWORD_PROTECTED = "The PDF is password-protected; upload an unlocked copy."
NO_TEXT = "The PDF has no text we could extract; if it is a scan, upload a copy with a text layer."

# 50 pages take 2-4 s on a typical manual (8 s for 117 pages), far inside the 60 s CPU
# allowance of one call, and move the progress bar every few seconds.
PAGES_PER_CALL = 50
# Batches bound each call, not the whole file: 5,000 pages (about 6 minutes) bounds that.
MAX_PAGES = 5000
_OUTLINE = "retrieval.loaders.pdf:pdf_outline"
_PAGES = "retrieval.loaders.pdf:pdf_pages"

# "7", "- 7 -", "Page 7", "7 / 12", "Page 7 of 12": running page numbers, not content.
_PAGE_NUMBER = re.compile(r"^[\s\-–—]*(page\s+)?\d{1,5}(\s*(/|of)\s*\d{1,5})?[\s\-–—]*$", re.IGNORECASE)

# A line at least this much larger than the body text is a heading.
HEADING_SIZE_RATIO = 1.15
# Longer lines are text set large (a flyer, a pull quote), not headings.
MAX_HEADING_CHARS = 150
MAX_HEADING_LEVELS = 6
# Without font sizes, a first line this short that does not end like a sentence is a heading.
SHORT_LINE_CHARS = 80
SHORT_LINE_WORDS = 12
_NOT_A_HEADING_END = (".", ",", ";", ":", "-")

# Metadata titles that name the tool or the file, not the document.
_GENERATOR_TITLE = re.compile(
    r"""^(
        untitled([\s\-_]*(document|\d+))?
      | (microsoft\s+)?(office\s+)?(word|excel|powerpoint)(\s*-\s*.*)?
      | powerpoint\s+presentation | presentation\s*\d* | book\s*\d+ | document\s*\d* | slide\s*\d+
      | title | no\s+title | none | null | unknown | default | new\s+document
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_FILE_NAME = re.compile(
    r"\.(pdf|docx?|dotx?|odt|rtf|txt|md|html?|xlsx?|pptx?|key|pages|indd|qxp|tex|dvi|e?ps|ai|psd|png|jpe?g|tiff?|xps)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Line:
    text: str
    size: float = 0.0  # the font size most of its characters are drawn at; 0 when unknown


@dataclass(frozen=True)
class _Page:
    number: int
    lines: list[_Line]


@dataclass(frozen=True)
class PdfOutline:
    """What is read once per PDF: its page count and its metadata title ("" when that
    names no document)."""

    page_count: int
    title: str


@dataclass(frozen=True)
class PdfPages:
    """One batch of pages: those read (without running page numbers) and the numbers of
    those that could not be."""

    pages: list[_Page]
    unreadable: list[int]


def load_pdf(
    data: bytes, *, fallback_title: str, on_progress: ProgressCallback | None = None, call: Call = call_here
) -> LoadedDocument:
    """Paragraphs of each page's text as Blocks located at "page N" (1-based), under the
    headings found by font size. The title is the metadata's when it is a real one, else
    the first heading, else `fallback_title`. Pages are read PAGES_PER_CALL at a time through
    `call`, and `on_progress(pages read, pages)` is told after each batch.

    Raises LoaderError for encrypted PDFs that need a password, damaged files, PDFs without
    text and PDFs of more than MAX_PAGES pages.
    """
    outline = call(_OUTLINE, data, fallback_title=fallback_title)
    assert isinstance(outline, PdfOutline)
    if outline.page_count > MAX_PAGES:
        raise LoaderError(f"The PDF has {outline.page_count:,} pages; split it into files of at most {MAX_PAGES:,}.")
    pages: list[_Page] = []
    unreadable: list[int] = []
    for start in range(0, outline.page_count, PAGES_PER_CALL):
        stop = min(outline.page_count, start + PAGES_PER_CALL)
        batch = call(_PAGES, data, start=start, stop=stop)
        assert isinstance(batch, PdfPages)
        pages += batch.pages
        unreadable += batch.unreadable
        if on_progress is not None:
            on_progress(stop, outline.page_count)
    return pdf_document(outline, pages, unreadable, fallback_title=fallback_title)


def pdf_outline(data: bytes, *, fallback_title: str) -> PdfOutline:
    """The page count and metadata title; LoaderError for a locked or damaged file."""
    reader = _open(data)
    return PdfOutline(len(_pages(reader)), _metadata_title(reader, fallback_title=fallback_title))


def pdf_pages(data: bytes, *, start: int, stop: int) -> PdfPages:
    """The lines of pages `start` to `stop` (0-based, `stop` excluded) with their font sizes."""
    page_objects = _pages(_open(data))[start:stop]
    pages: list[_Page] = []
    unreadable: list[int] = []
    for number, page in enumerate(page_objects, start=start + 1):
        lines = _page_lines(page)
        if lines is None:
            unreadable.append(number)
        else:
            pages.append(_Page(number, _without_page_numbers(lines)))
    return PdfPages(pages, unreadable)


def pdf_document(
    outline: PdfOutline, pages: list[_Page], unreadable: list[int], *, fallback_title: str
) -> LoadedDocument:
    """The pages put together: headings by font size over the whole document, then blocks.
    Pure Python (no pypdf), so it may run outside the parser child."""
    levels = _heading_levels([line for page in pages for line in page.lines])
    opening = _opening_heading(pages, levels)
    title = outline.title or (opening.text if opening else "")
    blocks = _blocks(pages, levels, opening=opening, title=title)
    if not blocks:
        raise LoaderError(DAMAGED if unreadable else NO_TEXT)
    metadata = {"pages": str(outline.page_count)}
    if unreadable:
        metadata["unreadable_pages"] = ", ".join(map(str, unreadable))
    return LoadedDocument(
        title=title or fallback_title, blocks=blocks, content_type="application/pdf", metadata=metadata
    )


def _open(data: bytes) -> PdfReader:
    # pypdf raises many exception types on malformed input (PdfReadError, ValueError, KeyError, ...).
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise LoaderError(DAMAGED) from exc
    if encrypted:
        _unlock(reader)
    return reader


def _unlock(reader: PdfReader) -> None:
    """Many PDFs are encrypted only to restrict printing or editing: the empty user password opens them."""
    try:
        unlocked = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except Exception as exc:
        raise LoaderError(PASSWORD_PROTECTED) from exc
    if not unlocked:
        raise LoaderError(PASSWORD_PROTECTED)


def _pages(reader: PdfReader) -> list[PageObject]:
    try:
        return list(reader.pages)
    except Exception as exc:
        raise LoaderError(DAMAGED) from exc


# Text -----------------------------------------------------------------------------------------


def _page_lines(page: PageObject) -> list[_Line] | None:
    """The page's lines with their font sizes, or None when this page cannot be read (the
    other pages may still be fine)."""
    fragments: list[tuple[str, float]] = []

    def visit(text: str, cm: Sequence[float], tm: Sequence[float], font: Any, font_size: float) -> None:
        if text:
            fragments.append((strip_control(text), _drawn_size(font_size, tm, cm)))

    try:
        text = strip_control(page.extract_text(visitor_text=visit))
    except Exception:  # noqa: BLE001 - one broken page must not lose the rest of the document
        return None
    if "".join(fragment for fragment, _ in fragments) != text:
        # The pieces handed to the visitor should add up to the page's text; when they do
        # not, the text is right and the sizes cannot be placed on it.
        return [_Line(line) for line in text.split("\n")]
    return _sized_lines(fragments)


def _drawn_size(font_size: float, tm: Sequence[float], cm: Sequence[float]) -> float:
    """The size text is drawn at: many PDFs set the font at 1 pt and scale it with the text
    matrix (and the page's transformation)."""
    try:
        scale = math.sqrt(abs((tm[0] * tm[3] - tm[1] * tm[2]) * (cm[0] * cm[3] - cm[1] * cm[2])))
        size = float(font_size) * scale
    except (TypeError, ValueError, IndexError):
        return 0.0
    return round(size, 1) if math.isfinite(size) and size > 0 else 0.0


def _sized_lines(fragments: list[tuple[str, float]]) -> list[_Line]:
    lines: list[_Line] = []
    text: list[str] = []
    sizes: Counter[float] = Counter()
    for fragment, size in fragments:
        parts = fragment.split("\n")
        for index, part in enumerate(parts):
            if index:
                lines.append(_line(text, sizes))
                text, sizes = [], Counter()
            text.append(part)
            sizes[size] += sum(not character.isspace() for character in part)
    lines.append(_line(text, sizes))
    return lines


def _line(text: list[str], sizes: Counter[float]) -> _Line:
    counted = [(count, size) for size, count in sizes.items() if count]
    return _Line("".join(text), max(counted)[1] if counted else 0.0)


def _without_page_numbers(lines: list[_Line]) -> list[_Line]:
    # Only the first and last lines can be running headers or footers; a number mid-page is content.
    kept = _trimmed(lines)
    if kept and _PAGE_NUMBER.match(kept[-1].text):
        kept = _trimmed(kept[:-1])
    if kept and _PAGE_NUMBER.match(kept[0].text):
        kept = _trimmed(kept[1:])
    return kept


def _trimmed(lines: list[_Line]) -> list[_Line]:
    start, end = 0, len(lines)
    while start < end and not lines[start].text.strip():
        start += 1
    while end > start and not lines[end - 1].text.strip():
        end -= 1
    return lines[start:end]


# Headings -------------------------------------------------------------------------------------


def _heading_levels(lines: list[_Line]) -> dict[float, int]:
    """Heading level by font size: sizes clearly above the body text's, the largest level 1."""
    drawn: Counter[float] = Counter()
    for line in lines:
        if line.size:
            drawn[line.size] += len(line.text.strip())
    if not drawn:
        return {}
    body = drawn.most_common(1)[0][0]
    sizes = {line.size for line in lines if line.size >= body * HEADING_SIZE_RATIO and _heading_like(line.text)}
    return {size: level for level, size in enumerate(sorted(sizes, reverse=True)[:MAX_HEADING_LEVELS], start=1)}


def _heading_like(text: str) -> bool:
    stripped = text.strip()
    return 0 < len(stripped) <= MAX_HEADING_CHARS and any(character.isalpha() for character in stripped)


@dataclass(frozen=True)
class _Heading:
    text: str
    level: int
    page: int
    first_line: int  # index of its first line on the page
    end_line: int  # index after its last line


def _opening_heading(pages: list[_Page], levels: dict[float, int]) -> _Heading | None:
    """The first heading of the first page with text: its first line in a larger font, or else
    its first line when that is short and does not read as the start of a paragraph."""
    page = next((page for page in pages if page.lines), None)
    if page is None:
        return None
    for index, line in enumerate(page.lines):
        if _level(line, levels):
            return _heading_at(page, index, levels)
    first = page.lines[0].text.strip()
    rest = [line for line in page.lines[1:] if line.text.strip()]
    words = first.split()
    if (
        rest
        and len(first) <= SHORT_LINE_CHARS
        and len(words) <= SHORT_LINE_WORDS
        and not first.endswith(_NOT_A_HEADING_END)
        and not first[0].islower()
        and any(character.isalpha() for character in first)
    ):
        return _Heading(collapse_whitespace(first), 1, page.number, 0, 1)
    return None


def _level(line: _Line, levels: dict[float, int]) -> int:
    return levels.get(line.size, 0) if _heading_like(line.text) else 0


def _heading_at(page: _Page, index: int, levels: dict[float, int]) -> _Heading:
    """The heading starting at line `index`, with the lines that continue it (a long heading
    wraps over lines of the same size)."""
    level = _level(page.lines[index], levels)
    end = index + 1
    while end < len(page.lines) and _level(page.lines[end], levels) == level:
        end += 1
    text = collapse_whitespace(" ".join(line.text for line in page.lines[index:end]))
    return _Heading(text, level, page.number, index, end)


def _blocks(pages: list[_Page], levels: dict[float, int], *, opening: _Heading | None, title: str) -> list[Block]:
    """Paragraphs under the heading path in force where they stand. The opening heading is
    left out of the path when it is the title, which is indexed with every chunk anyway."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    for page in pages:
        body: list[str] = []
        index = 0
        while index < len(page.lines):
            heading = _heading_starting(page, index, levels, opening)
            if heading is None:
                body.append(page.lines[index].text)
                index += 1
                continue
            blocks += _paragraphs(body, path, page)
            body = []
            while path and path[-1][0] >= heading.level:
                path.pop()
            if not (heading is opening and _same_text(heading.text, title)):
                path.append((heading.level, heading.text))
            index = heading.end_line
        blocks += _paragraphs(body, path, page)
    return blocks


def _heading_starting(page: _Page, index: int, levels: dict[float, int], opening: _Heading | None) -> _Heading | None:
    if opening is not None and (page.number, index) == (opening.page, opening.first_line):
        return opening
    return _heading_at(page, index, levels) if _level(page.lines[index], levels) else None


def _paragraphs(body: list[str], path: list[tuple[int, str]], page: _Page) -> list[Block]:
    heading_path = tuple(text for _, text in path)
    location = f"page {page.number}"
    return [
        Block(text=text, heading_path=heading_path, location=location) for text in split_paragraphs("\n".join(body))
    ]


def _same_text(left: str, right: str) -> bool:
    return collapse_whitespace(left).casefold() == collapse_whitespace(right).casefold()


# Title ----------------------------------------------------------------------------------------


def _metadata_title(reader: PdfReader, *, fallback_title: str) -> str:
    """The title in the document information, when it names the document rather than the
    tool that made it or the file it was made from; "" otherwise."""
    try:
        metadata = reader.metadata
        raw = metadata["/Title"] if metadata is not None and "/Title" in metadata else None
        title = collapse_whitespace(strip_control(_string(raw))) if raw else ""
    except Exception:  # noqa: BLE001 - a broken info dictionary only costs us the title
        return ""
    if not title or not any(character.isalnum() for character in title):
        return ""
    if _GENERATOR_TITLE.match(title) or _FILE_NAME.search(title) or "/" in title or "\\" in title:
        return ""
    if _same_text(title, fallback_title):
        return ""  # named after the file: a heading, if there is one, says more
    return title


def _string(value: object) -> str:
    """A PDF string as text. pypdf leaves a string it cannot decode as bytes, and reading those
    as UTF-16 turns "Refund<NUL> policy" into CJK gibberish; control bytes (the usual reason it
    cannot decode them) are dropped and the rest decoded again."""
    if not isinstance(value, ByteStringObject):
        return str(value)
    cleaned = bytes(byte for byte in value if byte >= 0x20 or byte in b"\t\n\r")
    decoded = create_string_object(cleaned)
    return cleaned.decode("latin-1") if isinstance(decoded, ByteStringObject) else str(decoded)
