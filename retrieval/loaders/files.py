"""Uploaded files and typed-in text to LoadedDocument: picks the loader by extension, then content type."""

from __future__ import annotations

import codecs
import dataclasses
from pathlib import PurePosixPath

from .base import Block, Call, LoadedDocument, LoaderError, ProgressCallback, call_here
from .csv_rows import load_csv
from .formatting import collapse_whitespace, filename_stem, megabytes, strip_control
from .html_page import load_html
from .markdown import load_markdown
from .pdf import load_pdf
from .text import BINARY, NO_TEXT, decode_text, load_plain_text, looks_binary
from .word import CONTENT_TYPE as DOCX_CONTENT_TYPE
from .word import load_docx

PDF = "application/pdf"
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".pdf": PDF,
    ".docx": DOCX_CONTENT_TYPE,
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".csv": "text/csv",
}
# Other names browsers and servers use for the same formats.
_CONTENT_TYPE_ALIASES: dict[str, str] = {
    "application/x-pdf": "application/pdf",
    "application/xhtml+xml": "text/html",
    "text/x-markdown": "text/markdown",
    "application/csv": "text/csv",
    "text/x-csv": "text/csv",
}
_SUPPORTED_NAMES = "PDF, DOCX, HTML, Markdown, text, CSV"
DEFAULT_MAX_BYTES = 25 * 1024 * 1024


def load_bytes(
    data: bytes,
    *,
    filename: str,
    content_type: str = "",
    csv_columns: list[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_progress: ProgressCallback | None = None,
    call: Call = call_here,
) -> LoadedDocument:
    """Load an uploaded file. The type comes from the file name's extension, else from `content_type`.

    Raises LoaderError, with a message meant for the uploader, for unsupported types, empty or
    oversize files and files the matching loader cannot read. `csv_columns` only applies to CSV;
    `on_progress` and `call` to PDF (see `load_pdf`).
    """
    media_type = media_type_for(filename, content_type)
    if len(data) > max_bytes:
        raise LoaderError(f"The file is larger than the {megabytes(max_bytes)} MB limit.")
    if not data.strip():
        raise LoaderError("The file is empty.")
    fallback_title = strip_control(filename_stem(filename)) or "Untitled"
    document = load_media(
        data,
        media_type=media_type,
        fallback_title=fallback_title,
        csv_columns=csv_columns,
        on_progress=on_progress,
        call=call,
    )
    return dataclasses.replace(document, metadata={**document.metadata, "filename": strip_control(filename)})


def load_text(text: str, *, title: str, markdown: bool = True) -> LoadedDocument:
    """A document typed in as text, read as Markdown unless `markdown` is False."""
    if not text.strip():
        raise LoaderError("The document is empty.")
    if markdown:
        document = load_markdown(text, fallback_title=title)
        # The title typed in next to the text names the document, whatever its first heading says.
        return without_control_characters(dataclasses.replace(document, title=title.strip() or document.title))
    return without_control_characters(load_plain_text(text, title=title))


def media_type_for(filename: str, content_type: str) -> str:
    """The supported media type for this upload; LoaderError when neither the extension nor the type is known."""
    extension = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if extension in SUPPORTED_EXTENSIONS:
        return SUPPORTED_EXTENSIONS[extension]
    declared = content_type.split(";", 1)[0].strip().lower()
    declared = _CONTENT_TYPE_ALIASES.get(declared, declared)
    if declared in SUPPORTED_EXTENSIONS.values():
        return declared
    described = extension or declared or "without an extension"
    raise LoaderError(f"Unsupported file type {described}; supported: {_SUPPORTED_NAMES}.")


def load_media(
    data: bytes,
    *,
    media_type: str,
    fallback_title: str,
    csv_columns: list[str] | None = None,
    text: str | None = None,
    on_progress: ProgressCallback | None = None,
    call: Call = call_here,
) -> LoadedDocument:
    """Run the loader for `media_type` (one of SUPPORTED_EXTENSIONS' values).

    `text` is `data` already decoded, when the caller knows the encoding (an HTTP charset).
    Every field of the result is free of control characters, whatever the file held.
    """
    if media_type == PDF:
        document = load_pdf(data, fallback_title=fallback_title, on_progress=on_progress, call=call)
    else:
        document = _load_media(
            data, media_type=media_type, fallback_title=fallback_title, csv_columns=csv_columns, text=text
        )
    return without_control_characters(document)


def without_control_characters(document: LoadedDocument) -> LoadedDocument:
    """The document with control characters (NUL, lone surrogates...) removed from every field:
    a title or heading taken from a file's metadata is as untrusted as its text."""
    blocks = [
        Block(
            text=strip_control(block.text),
            heading_path=tuple(collapse_whitespace(strip_control(heading)) for heading in block.heading_path),
            location=strip_control(block.location),
        )
        for block in document.blocks
    ]
    # A block that held nothing but control characters is no text at all.
    blocks = [block for block in blocks if block.text.strip()]
    if not blocks:
        raise LoaderError(NO_TEXT)
    return dataclasses.replace(
        document,
        title=collapse_whitespace(strip_control(document.title)),
        blocks=blocks,
        metadata={strip_control(key): strip_control(value) for key, value in document.metadata.items()},
    )


def _load_media(
    data: bytes,
    *,
    media_type: str,
    fallback_title: str,
    csv_columns: list[str] | None,
    text: str | None,
) -> LoadedDocument:
    if media_type == DOCX_CONTENT_TYPE:
        return load_docx(data, fallback_title=fallback_title)
    if media_type == "text/html":
        # lxml would quietly read binary data as a page of control characters.
        if looks_binary(data) and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise LoaderError(BINARY)
        return load_html(data, fallback_title=fallback_title)
    decoded = decode_text(data) if text is None else text
    if not decoded.strip():
        raise LoaderError(NO_TEXT)
    if media_type == "text/markdown":
        return load_markdown(decoded, fallback_title=fallback_title)
    if media_type == "text/csv":
        return load_csv(decoded, title=fallback_title, columns=csv_columns)
    return load_plain_text(decoded, title=fallback_title)
