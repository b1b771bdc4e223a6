"""Plain text: decoding uploaded bytes, telling text from binary data, paragraphs."""

from __future__ import annotations

import codecs

from .base import Block, LoadedDocument, LoaderError
from .formatting import split_paragraphs

NOT_UTF8 = "The file is not UTF-8 text; save it as UTF-8 and upload it again."
BINARY = "The file looks like binary data, not text."
NO_TEXT = "The file has no text."

# Only the start is inspected: enough to tell binary data from text without scanning 25 MB.
_SNIFF_BYTES = 8192
_TEXT_CONTROL_BYTES = frozenset(b"\t\n\r\f\b\x1b")
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes) -> str:
    """Decode uploaded text: UTF-8 (or a UTF-16/UTF-8 byte order mark), else cp1252.

    Raises LoaderError for binary data and for bytes no encoding we trust decodes cleanly.
    """
    for mark, encoding in _BYTE_ORDER_MARKS:
        if data.startswith(mark):
            text = _decode_strictly(data[len(mark) :], encoding)
            if "\x00" in text[:_SNIFF_BYTES]:
                raise LoaderError(BINARY)
            return text
    if looks_binary(data):
        raise LoaderError(BINARY)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # cp1252 maps almost every byte, so it is only trusted when no undefined byte turns up.
    return _decode_strictly(data, "cp1252")


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or many control bytes, near the start: what `git` and `grep` also go by."""
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return True
    controls = sum(1 for byte in sample if byte < 0x20 and byte not in _TEXT_CONTROL_BYTES)
    return controls > len(sample) // 10


def load_plain_text(text: str, *, title: str) -> LoadedDocument:
    blocks = [Block(text=paragraph) for paragraph in split_paragraphs(text)]
    if not blocks:
        raise LoaderError(NO_TEXT)
    return LoadedDocument(title=title, blocks=blocks, content_type="text/plain")


def _decode_strictly(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoaderError(NOT_UTF8) from exc
