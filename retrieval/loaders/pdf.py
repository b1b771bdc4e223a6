"""PDF files through pypdf: blocks per page, `location` "page N"."""

from __future__ import annotations

import io
import re

from pypdf import PageObject, PasswordType, PdfReader

from .base import Block, LoadedDocument, LoaderError
from .formatting import split_paragraphs

DAMAGED = "The PDF could not be read: it looks damaged or is not a PDF."
PASSWORD_PROTECTED = "The PDF is password-protected; upload an unlocked copy."
NO_TEXT = "The PDF has no text we could extract; if it is a scan, upload a copy with a text layer."

# "7", "- 7 -", "Page 7", "7 / 12", "Page 7 of 12": running page numbers, not content.
_PAGE_NUMBER = re.compile(r"^[\s\-–—]*(page\s+)?\d{1,5}(\s*(/|of)\s*\d{1,5})?[\s\-–—]*$", re.IGNORECASE)


def load_pdf(data: bytes, *, fallback_title: str) -> LoadedDocument:
    """Paragraphs of each page's text as Blocks located at "page N" (1-based).

    Raises LoaderError for encrypted PDFs that need a password, damaged files and PDFs without text.
    """
    reader = _open(data)
    pages = _pages(reader)
    blocks: list[Block] = []
    unreadable: list[str] = []
    for number, page in enumerate(pages, start=1):
        text = _page_text(page)
        if text is None:
            unreadable.append(str(number))
            continue
        blocks.extend(Block(text=paragraph, location=f"page {number}") for paragraph in _page_paragraphs(text))
    if not blocks:
        raise LoaderError(DAMAGED if unreadable else NO_TEXT)
    metadata = {"pages": str(len(pages))}
    if unreadable:
        metadata["unreadable_pages"] = ", ".join(unreadable)
    return LoadedDocument(
        title=_title(reader) or fallback_title, blocks=blocks, content_type="application/pdf", metadata=metadata
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


def _page_text(page: PageObject) -> str | None:
    """The page's text, or None when this page cannot be read (the other pages may still be fine)."""
    try:
        return page.extract_text().replace("\x00", "")
    except Exception:  # noqa: BLE001 - one broken page must not lose the rest of the document
        return None


def _page_paragraphs(text: str) -> list[str]:
    lines = text.strip().split("\n")
    # Only the first and last lines can be running headers or footers; a number mid-page is content.
    if lines and _PAGE_NUMBER.match(lines[-1]):
        lines.pop()
    if lines and _PAGE_NUMBER.match(lines[0]):
        lines.pop(0)
    return split_paragraphs("\n".join(lines))


def _title(reader: PdfReader) -> str:
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # noqa: BLE001 - a broken info dictionary only costs us the title
        return ""
    return " ".join(str(title).split()) if title else ""
