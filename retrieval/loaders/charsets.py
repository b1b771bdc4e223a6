"""Bytes to text when the declared charset may be wrong.

Pages and mail often name a charset their bytes are not in: a template that says
gb2312 around UTF-8 text, a mail client that says UTF-8 and writes Latin-1. Decoding
with the declared charset regardless gives mojibake or a page of replacement
characters, so a declaration is trusted only when the bytes decode under it strictly;
otherwise UTF-8 (what most text is today), then the charset charset-normalizer
detects. Pure Python, no Django; the HTML loader and email parsing share it.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable

from charset_normalizer import from_bytes

# As browsers do (WHATWG Encoding): a legacy label usually means the vendor superset,
# e.g. Latin-1 with Windows-1252 quotes and dashes.
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
}
# Windows-1252 is the commonest legacy charset in Western mail and pages (and the WHATWG
# fallback); on a few lines charset-normalizer often ranks a neighbour first (ISO-8859-10
# for French, Windows-1250 for Swedish). Within this much "chaos" of its pick, 1252 wins.
_WESTERN_TOLERANCE = 0.1
_WESTERN = "cp1252"
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def codec_for(charset: str | None) -> str | None:
    """The Python codec for a declared charset; None when it is missing, unknown, or plain
    ASCII (which 8-bit text often declares without meaning it)."""
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if info.name == "ascii":
        return None
    return _SUPERSETS.get(info.name, info.name)


def decode_strictly(data: bytes, codec: str | None) -> str | None:
    """`data` in `codec`, or None when a byte does not fit (or `codec` is no text encoding)."""
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except (ValueError, LookupError):  # LookupError: a codec like "hex" that is not a text encoding
        return None


def detected_codec(data: bytes) -> str | None:
    """The charset charset-normalizer reads `data` in most cleanly, Windows-1252 when it
    reads it nearly as cleanly; None when nothing fits."""
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        if _WESTERN in match.could_be_from_charset and match.chaos <= best.chaos + _WESTERN_TOLERANCE:
            return _WESTERN
    return str(best.encoding)


def decode_declared(data: bytes, declared: Iterable[str | None]) -> str:
    """`data` as text: a byte-order mark's charset, else the first declared charset the bytes
    decode in strictly, else UTF-8, else the detected charset; only then the first known
    declared charset with replacement characters, else Windows-1252 or Latin-1 (never fails).
    """
    for mark, codec in _BYTE_ORDER_MARKS:
        if data.startswith(mark) and (text := decode_strictly(data, codec)) is not None:
            return text
    known = [name for name in map(codec_for, declared) if name is not None]
    for codec in [*known, "utf-8"]:
        if (text := decode_strictly(data, codec)) is not None:
            return text
    detected = decode_strictly(data, detected_codec(data))
    if detected is not None:
        return detected
    for codec in known:
        try:
            return data.decode(codec, "replace")
        except LookupError:
            continue
    return decode_strictly(data, _WESTERN) or data.decode("latin-1")
