"""Inbound email: raw RFC 5322 bytes in, a ticket-ready `InboundEmail` out.

Pure Python, no Django. Mail in the wild is often malformed (broken boundaries,
wrong or missing charsets, 8-bit headers), so parsing degrades instead of raising:
`EmailParseError` means the input is not an email at all, never that it is a bad one.
HTML goes through lxml directly, not BeautifulSoup: on a 100 kB HTML body BeautifulSoup
takes ~100-200 ms, lxml a few, and a mail parse must stay well under 20 ms.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import MessageError
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from lxml import etree

from retrieval.loaders.charsets import decode_declared
from retrieval.loaders.formatting import strip_control

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_SUBJECT_CHARS = 300
MAX_FILENAME_CHARS = 200
# The stdlib's header parser takes time quadratic in a field's length (1.5 s for a 186 kB
# To:, 14 s at 800 kB), so fields are capped before parsing. Postfix's default for a whole
# header block is 100 kB; a real field (a To: of a few hundred people) stays well under 16 kB.
MAX_HEADER_FIELD_BYTES = 16 * 1024
MAX_HEADER_BYTES = 256 * 1024

# What the stdlib parser raises on inputs it does not expect (it has had bugs that
# raise IndexError or TypeError from deep inside header parsing).
_MALFORMED = (MessageError, ValueError, LookupError, TypeError, AttributeError)
# Nesting deeper than this is an attack or a loop, not a real message.
_MAX_DEPTH = 20
# policy.default, except that a header its parser chokes on is read as plain text.
_HEADERS = HeaderRegistry()


def _lenient_header(name: str, value: str) -> BaseHeader:
    """The stdlib's header object for `name`; where its parser raises (IndexError on some
    malformed parameters, e.g. `charset*` with no value), the same header as unstructured text."""
    try:
        return _HEADERS(name, value)
    except _MALFORMED:
        return _HEADERS["x-unparsed"](name, value)


_POLICY = policy.default.clone(header_factory=_lenient_header)
# Serialising a nested message: compat32 writes headers back as they came instead of re-parsing them.
_EML_POLICY = policy.compat32.clone(linesep="\r\n")

_TOKEN = re.compile(r"\[#([A-Z0-9]{6,12})\]")
_MESSAGE_ID = re.compile(r"<([^<>]+)>")
_ADDR_SPEC = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")
_FIRST_WORD = re.compile(r"[A-Za-z0-9_-]+")
_FORWARDED_SUBJECT = re.compile(r"\s*fwd?\s*:", re.IGNORECASE)
_AUTO_SUBJECTS = (
    "auto:",
    "automatic reply:",
    "out of office",
    "undeliverable:",
    "delivery status notification",
    "mail delivery failed",
    "returned mail:",
)
# The headers parse_email reads: when the header block is over MAX_HEADER_BYTES, the others go first.
_READ_HEADERS = frozenset(
    name.encode().lower()
    for name in (
        "From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "MIME-Version",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Precedence",
        "X-Autoreply", "X-Autorespond",
    )
)  # fmt: skip
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD_START = re.compile(rb"^(?=[^ \t\r\n])", re.MULTILINE)
# Headers of an enclosed message: a message/* part with one of these is a message, else text.
_MESSAGE_HEADERS = ("From", "Subject", "Date", "Message-ID", "Newsgroups")
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_DAEMONS = {"mailer-daemon", "postmaster"}

# Quoted-history markers, one line each unless said otherwise. Every marker line matches _MARKER_START.
_MARKER_START = re.compile(r"\s*(?:On\s|-{3}|_{10}|\*?From:|Begin forwarded)", re.IGNORECASE)
_FORWARD = re.compile(r"\s*(?:-{3,}\s*Forwarded message\s*-{3,}|Begin forwarded message:)\s*$", re.IGNORECASE)
_ON_WROTE = re.compile(r"\s*On\s.*\bwrote:\s*$")
_ON = re.compile(r"\s*On\s")
_WROTE = re.compile(r".*\bwrote:\s*$")
_ORIGINAL = re.compile(r"\s*-{3,}\s*Original Message\s*-{3,}\s*$", re.IGNORECASE)
_OUTLOOK_RULE = re.compile(r"\s*_{10,}\s*$")
_FROM = re.compile(r"\s*\*?From:", re.IGNORECASE)
_SENT = re.compile(r"\s*\*?Sent:", re.IGNORECASE)
_FROM_SENT = re.compile(r"\s*\*?From:.*\bSent:", re.IGNORECASE)

# A broken multipart's real boundary: a `--token` line followed by a header line.
_BOUNDARY_LINE = re.compile(rb"^--([0-9A-Za-z'()+_,./:=?-]{1,70})[ \t]*\r?\n[!-9;-~]+:", re.MULTILINE)

# HTML to text: private-use characters stand for line breaks while whitespace is collapsed.
_BREAK = "\ue000"  # block edge: runs of these make one line break
_PARAGRAPH = "\ue001"  # paragraph edge: a run holding one makes a blank line
_NEWLINE = "\ue002"  # <br>: always a line break
_BLOCK_TAGS = (
    "div", "li", "tr", "ul", "ol", "table", "dl", "dt", "dd", "section", "article", "header", "footer", "nav",
    "aside", "main", "address", "center", "figure", "figcaption", "form", "fieldset",
)  # fmt: skip
_PARAGRAPH_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr")
_DROPPED_TAGS = ("script", "style", "head", "template", "noscript")
# lxml refuses these in text it is given back, and no reader wants them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_BREAK_RUN = re.compile(f"[ {_BREAK}{_PARAGRAPH}]*[{_BREAK}{_PARAGRAPH}][ {_BREAK}{_PARAGRAPH}]*")


@dataclass(frozen=True)
class Attachment:
    """One kept attachment. `filename` is safe to store: no path, no control characters,
    at most MAX_FILENAME_CHARS, "attachment" when the mail gave none."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class InboundEmail:
    """One parsed email. Ids carry no angle brackets; addresses are lower-cased addr-specs.

    `message_id` is generated from the bytes when the mail has none, so a redelivery gets
    the same one. `text` is the whole body; `new_text` only what this message adds.
    `automated` is "" for a person's mail, else why it looks machine-sent (do not auto-reply).
    `token` is the ticket token from a "[#AB12CD]" in the subject, or "".
    `dropped_headers` says which header fields were left unread for their size, and why.
    """

    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_address: str
    from_name: str
    to_addresses: tuple[str, ...]
    date: datetime | None
    text: str
    new_text: str
    attachments: tuple[Attachment, ...]
    skipped_attachments: tuple[str, ...]
    automated: str
    token: str
    dropped_headers: tuple[str, ...] = ()


class EmailParseError(Exception):
    """The input is not an email at all (empty, or nothing but whitespace)."""


def parse_email(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> InboundEmail:
    """Parse one inbound email. Raises EmailParseError only when there is no email at all;
    malformed MIME, unknown charsets and invalid bytes degrade to a best-effort reading.

    `new_text` is what the sender wrote in this message (quoted history and a trailing
    `-- ` signature removed); a forward is kept whole, since the forward is the content.
    Attachments over `max_attachment_bytes` are dropped and described in `skipped_attachments`.
    Header fields over MAX_HEADER_FIELD_BYTES, and the least useful fields of a header block
    over MAX_HEADER_BYTES, are left unread (whole, never cut) and listed in `dropped_headers`.
    """
    if not raw.strip():
        raise EmailParseError("empty input: no headers and no body")
    # Leading blank lines would end the header block before it starts.
    data, dropped = _capped_headers(raw.lstrip(b"\r\n"))
    try:
        msg = email.message_from_bytes(data, policy=_POLICY)
    except _MALFORMED:  # a parser bug not yet met: read it all as one text body rather than fail
        msg = email.message_from_bytes(b"\r\n" + data, policy=_POLICY)

    full_subject = " ".join(_storable(_header_text(msg, "Subject")).split())
    # An unreadable sender ("MAILER-DAEMON", no domain) still tells machine-sent mail apart.
    sender_name, sender_spec = next(iter(_addresses(msg, "From") or _mailboxes(msg, "From")), ("", ""))
    body = _Body(max_attachment_bytes)
    for part, depth in _leaves(msg, 0):
        body.add(part, depth)
    text = _trim_blank_lines(_storable(body.text()))
    forwarded = _FORWARDED_SUBJECT.match(full_subject) is not None
    token = _TOKEN.search(full_subject)
    return InboundEmail(
        message_id=_message_id(msg, raw),
        in_reply_to=_ids(msg, "In-Reply-To"),
        references=_ids(msg, "References"),
        subject=full_subject[:MAX_SUBJECT_CHARS].rstrip(),
        from_address=_storable(sender_spec.lower()) if _ADDR_SPEC.fullmatch(sender_spec) else "",
        from_name=" ".join(_storable(sender_name).split()),
        to_addresses=_unique(spec.lower() for _, spec in _addresses(msg, "To")),
        date=_date(msg),
        text=text,
        new_text=_trim_blank_lines(_strip_history(text, forwarded=forwarded)),
        attachments=tuple(body.attachments),
        skipped_attachments=tuple(body.skipped),
        automated=_automated(msg, subject=full_subject, sender=sender_spec),
        token=token.group(1) if token else "",
        dropped_headers=dropped,
    )


# Headers


def _capped_headers(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """`data` with its header block cut down to size before the stdlib parses it: fields over
    MAX_HEADER_FIELD_BYTES dropped, then, while the block is over MAX_HEADER_BYTES, the
    fields parse_email does not read, then the last fields. Each drop is logged and listed."""
    end = _HEADER_END.search(data)
    head, rest = (data[: end.start()], data[end.start() :]) if end else (data, b"")
    if len(head) <= MAX_HEADER_FIELD_BYTES:
        return data, ()
    starts = [match.start() for match in _FIELD_START.finditer(head)]
    fields = [head[start:stop] for start, stop in zip([0, *starts], [*starts, len(head)], strict=True) if stop > start]
    dropped: list[str] = []

    def drop(field: bytes, reason: str) -> None:
        name = field.split(b":", 1)[0][:60].decode("ascii", "replace").strip() or "(unnamed)"
        dropped.append(f"{name} header ({_size(len(field))}) not read: {reason}")

    kept: list[bytes] = []
    for field in fields:
        if len(field) > MAX_HEADER_FIELD_BYTES:
            drop(field, f"over the {_size(MAX_HEADER_FIELD_BYTES)} limit for one field")
        else:
            kept.append(field)
    if sum(map(len, kept)) > MAX_HEADER_BYTES:
        over = f"the header block is over the {_size(MAX_HEADER_BYTES)} limit"
        for field in [field for field in kept if _field_name(field) not in _READ_HEADERS]:
            drop(field, over)
        kept = [field for field in kept if _field_name(field) in _READ_HEADERS]
        while sum(map(len, kept)) > MAX_HEADER_BYTES:
            drop(kept.pop(), over)
    if dropped:
        logger.warning("inbound email: %d header fields not read: %s", len(dropped), "; ".join(dropped[:5]))
    return b"".join(kept) + rest, tuple(dropped)


def _field_name(field: bytes) -> bytes:
    return field.split(b":", 1)[0].strip().lower()


def _raw_header(msg: EmailMessage, name: str) -> str:
    """All values of header `name`, unfolded and joined, undecoded; read without the policy's
    header parser, which can raise on the malformed values that matter least here."""
    values = [str(value) for key, value in msg.raw_items() if key.lower() == name.lower()]
    return " ".join(values).replace("\r", "").replace("\n", "")


def _header_text(msg: EmailMessage, name: str) -> str:
    """The first `name` header as text, RFC 2047 encoded words decoded."""
    raw = _raw_header_first(msg, name)
    if "=?" not in raw:
        # Nothing to decode; raw 8-bit (often unencoded UTF-8 or Latin-1) is read like a body.
        return _unescape(raw)
    try:
        return _unescape(str(msg[name]))
    except _MALFORMED:
        return _unescape(raw)


def _raw_header_first(msg: EmailMessage, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value).replace("\r", "").replace("\n", "")
    return ""


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) for every valid address in the `name` headers. Where the
    parser cannot read one, an address written without angle brackets ("Big Bug bb@bug.com")
    is taken from the header's text, with the rest of it as the name when it is the only one."""
    parsed = _mailboxes(msg, name)
    valid = [(display, spec) for display, spec in parsed if _ADDR_SPEC.fullmatch(spec)]
    if len(valid) == len(parsed):
        return valid
    text = _header_text(msg, name)
    matches = [(match, spec) for match in _ADDR_SPEC.finditer(text) if (spec := _bare_address(match.group(0)))]
    if len(matches) == 1:
        match, spec = matches[0]
        display = " ".join((text[: match.start()] + " " + text[match.end() :]).split()).strip("\"'<>(),;: ")
        return [(display, spec)]
    names = {spec.lower(): display for display, spec in valid}
    return [(names.get(spec.lower(), ""), spec) for _, spec in matches]


def _bare_address(token: str) -> str:
    """An address-like token without the punctuation around it ("[bb@bug.com]," gives
    "bb@bug.com"); "" when what is left is no address."""
    spec = token.strip("()[]{}'.,;:")
    return spec if _ADDR_SPEC.fullmatch(spec) and "." in spec.rpartition("@")[2] else ""


def _mailboxes(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) for every address in the `name` headers, groups flattened."""
    try:
        headers = msg.get_all(name) or []
        return [(_unescape(a.display_name), _unescape(a.addr_spec)) for h in headers for a in h.addresses]
    except _MALFORMED:  # AttributeError when _lenient_header had to make it unstructured text
        return [(_unescape(n), _unescape(a)) for n, a in getaddresses([_raw_header(msg, name)])]


def _message_id(msg: EmailMessage, raw: bytes) -> str:
    """The Message-ID without brackets; else one derived from the bytes, so that the same
    mail delivered twice gets the same id and can be recognised as a duplicate."""
    ids = _ids(msg, "Message-ID")
    if ids:
        return ids[0]
    return f"generated-{hashlib.sha256(raw).hexdigest()[:32]}@neo-support.invalid"


def _ids(msg: EmailMessage, name: str) -> tuple[str, ...]:
    """Message ids in header order, brackets dropped. Bare ids (no brackets) are accepted
    because some clients send them; comments and phrases around bracketed ids are ignored."""
    value = _unescape(_raw_header(msg, name))
    found = ["".join(match.split()) for match in _MESSAGE_ID.findall(value)]
    if not found:
        found = [word for word in re.split(r"[\s,]+", value) if "@" in word]
    return _unique(found)


def _date(msg: EmailMessage) -> datetime | None:
    value = _unescape(_raw_header_first(msg, "Date")).strip()
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (*_MALFORMED, OverflowError):
        return None
    # "-0000" means "timezone unknown"; UTC is the only honest reading of it.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _automated(msg: EmailMessage, *, subject: str, sender: str) -> str:
    """Why this mail was sent by a machine, or "" for a person's mail. Replying to machines
    makes mail loops, so the reasons lean towards "automated" when a header says so."""
    auto_submitted = _first_word(_raw_header_first(msg, "Auto-Submitted"))
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = _first_word(_raw_header_first(msg, "Precedence"))
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    # X-Auto-Response-Suppress alone is not enough: Exchange adds it to ordinary mail too.
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in msg:
            return name
    local_part = sender.rpartition("@")[0] if "@" in sender else sender
    if local_part.lower() in _DAEMONS:
        return f"from {local_part.lower()}"
    if _content_type(msg) == "multipart/report":
        return "delivery status report"
    if subject.casefold().startswith(_AUTO_SUBJECTS):
        return "auto-reply subject"
    return ""


def _first_word(value: str) -> str:
    match = _FIRST_WORD.search(value)
    return match.group(0).lower() if match else ""


# Body and attachments


def _leaves(part: EmailMessage, depth: int) -> Iterator[tuple[EmailMessage, int]]:
    """The parts that carry content, in order, with their depth. A nested message/* part is a
    leaf: `_Body.add` makes it an .eml attachment or text."""
    # is_multipart() before get_payload(): on a text payload get_payload() decodes, and can raise.
    if not _content_type(part).startswith("multipart/") or depth >= _MAX_DEPTH:
        yield part, depth
    elif part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, EmailMessage):
                yield from _leaves(sub, depth + 1)
    else:
        repaired = _repair_multipart(part)
        if repaired is None:
            yield part, depth
        else:
            yield from _leaves(repaired, depth + 1)


def _repair_multipart(part: EmailMessage) -> EmailMessage | None:
    """A multipart whose declared boundary never appears (or that declares none) arrives as
    one opaque blob; re-read it with the boundary its body actually uses, if it has one."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    match = _BOUNDARY_LINE.search(data)
    if match is None:
        return None
    header = b'Content-Type: multipart/mixed; boundary="' + match.group(1) + b'"\r\n\r\n'
    repaired = email.message_from_bytes(header + data, policy=_POLICY)
    if not isinstance(repaired, EmailMessage) or not repaired.is_multipart():
        return None
    return repaired


def _content_type(part: EmailMessage) -> str:
    try:
        return part.get_content_type()
    except _MALFORMED:
        return "text/plain"


class _Body:
    """Collects a message's leaves into body text and attachments."""

    def __init__(self, max_attachment_bytes: int) -> None:
        self.max_attachment_bytes = max_attachment_bytes
        self.plain: list[str] = []
        self.html: list[str] = []
        self.other_text: list[str] = []
        self.attachments: list[Attachment] = []
        self.skipped: list[str] = []

    def add(self, part: EmailMessage, depth: int) -> None:
        content_type = _content_type(part)
        maintype = content_type.partition("/")[0]
        try:
            disposition = part.get_content_disposition() or ""
            filename = part.get_filename() or ""
        except _MALFORMED:
            disposition, filename = "", ""
        if maintype == "message":
            self._add_message(part, content_type, disposition=disposition, filename=filename, depth=depth)
        elif disposition == "attachment" or (maintype not in ("text", "multipart")):
            self._keep(_filename(filename), content_type, _payload(part))
        elif maintype == "text" and content_type not in ("text/plain", "text/html"):
            if filename:  # text/csv, text/calendar and the like are files, not prose
                self._keep(_filename(filename), content_type, _payload(part))
            else:
                self.other_text.append(_normalise_newlines(_part_text(part)))
        elif content_type == "text/html":
            self.html.append(_part_text(part))  # converted only if there is no plain text: it is the slow part
        else:  # text/plain, or a broken multipart we could not split: its bytes are the best text there is
            self.plain.append(_normalise_newlines(_part_text(part)))

    def _add_message(
        self, part: EmailMessage, content_type: str, *, disposition: str, filename: str, depth: int
    ) -> None:
        """A message/* part. An enclosed message (rfc822, global, news, or any other subtype
        that holds a From, Subject or Date) becomes an .eml attachment, and, shown inline, its
        text is the body when the mail has no text of its own (a forward of nothing but the
        message). Anything else (delivery-status and the like, or text mislabelled as one) is
        other text: machine detail when the mail has a body, the only words when it has none."""
        nested = _nested(part)
        enclosed = content_type in ("message/rfc822", "message/global", "message/news") or (
            nested is not None and any(_raw_header_first(nested, name) for name in _MESSAGE_HEADERS)
        )
        if not enclosed:
            self.other_text.append(_normalise_newlines(_decode(_nested_bytes(part), None)).strip("\n"))
            return
        self._keep(_filename(filename or _nested_subject(part) + ".eml"), content_type, _nested_bytes(part))
        if nested is not None and disposition != "attachment" and depth < _MAX_DEPTH:
            inner = _Body(self.max_attachment_bytes)
            for leaf, leaf_depth in _leaves(nested, depth + 1):
                inner.add(leaf, leaf_depth)
            if text := inner.text():
                self.other_text.append(_forwarded_header(nested) + text)

    def text(self) -> str:
        """The text/plain parts; else the HTML ones; else any other text (text/enriched,
        a mistyped subtype, an inline enclosed message), which beats showing nothing."""
        plain = _join_texts(self.plain)
        return plain or _join_texts([_html_to_text(html) for html in self.html]) or _join_texts(self.other_text)

    def _keep(self, filename: str, content_type: str, data: bytes) -> None:
        content_type = _storable(content_type)
        if len(data) > self.max_attachment_bytes:
            self.skipped.append(
                f"{filename} ({_size(len(data))}) not kept: over the {_size(self.max_attachment_bytes)} limit"
            )
        else:
            self.attachments.append(Attachment(filename=filename, content_type=content_type, data=data))


def _join_texts(texts: list[str]) -> str:
    return "\n\n".join(text.strip("\n") for text in texts if text.strip())


def _payload(part: EmailMessage) -> bytes:
    """The part's bytes, transfer encoding undone (bad base64 is decoded as far as it goes)."""
    try:
        data = part.get_payload(decode=True)
    except _MALFORMED:
        return b""
    return data if isinstance(data, bytes) else b""


def _part_text(part: EmailMessage) -> str:
    try:
        charset = part.get_content_charset()
    except _MALFORMED:
        charset = None
    return _decode(_payload(part), charset)


def _nested(part: EmailMessage) -> EmailMessage | None:
    try:
        nested = part.get_payload(0) if part.is_multipart() else None
    except _MALFORMED:
        return None
    return nested if isinstance(nested, EmailMessage) else None


def _nested_subject(part: EmailMessage) -> str:
    nested = _nested(part)
    subject = " ".join(_header_text(nested, "Subject").split()) if nested is not None else ""
    return subject or "message"


def _nested_bytes(part: EmailMessage) -> bytes:
    """The enclosed message(s) as bytes; a delivery-status part holds several header blocks."""
    try:
        payload = part.get_payload() if part.is_multipart() else None
        if not isinstance(payload, list) or not payload:
            return _payload(part)
        return b"".join(sub.as_bytes(policy=_EML_POLICY) for sub in payload if isinstance(sub, EmailMessage))
    except _MALFORMED:
        return _payload(part)


def _forwarded_header(nested: EmailMessage) -> str:
    """A forward marker (so the history cut keeps it whole) and who wrote what, when."""
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject"):
        if value := " ".join(_storable(_header_text(nested, name)).split()):
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n\n"


def _filename(name: str) -> str:
    """A name safe to store and to offer for download: the last path component only,
    control and bidi-override characters dropped, at most MAX_FILENAME_CHARS."""
    name = _unescape(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in _storable(name) if unicodedata.category(char) not in ("Cc", "Cf", "Cs"))
    name = name.strip().strip(".").strip()
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip()
    return name or "attachment"


def _size(count: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("kB", 1024)):
        if count >= factor:
            return f"{count / factor:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"


# Text


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes to text: the declared charset if the bytes fit it, else UTF-8, else the detected
    charset (mostly Windows-1252, what wrongly labelled or unlabelled 8-bit mail nearly always
    is); only then the declared charset with replacement characters (charsets.decode_declared)."""
    return _storable(decode_declared(data, [charset]))


def _unescape(value: str) -> str:
    """Undo the surrogate escapes the parser puts in for raw 8-bit bytes in headers."""
    if value.isascii() or not any("\udc80" <= char <= "\udcff" for char in value):
        return value
    try:
        return _decode(value.encode("utf-8", "surrogateescape"), None)
    except UnicodeEncodeError:  # other surrogates too: not from the parser, so not bytes to recover
        return _storable(value)


def _storable(text: str) -> str:
    """`text` without what PostgreSQL refuses in a text column (NULs, lone surrogates, which a
    declared codec such as raw-unicode-escape can produce, become "?") and without the other
    control characters, which no reader wants; tabs and line breaks stay."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="replace").decode("utf-8")
    return strip_control(text)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _html_to_text(html: str) -> str:
    """Readable text from an HTML body: scripts, styles and the head dropped, entities decoded,
    source whitespace collapsed, line breaks where blocks, paragraphs and <br> put them."""
    # Given as UTF-8 bytes with the encoding named, so a <meta charset> in the body cannot override it.
    parser = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True)
    try:
        root = etree.fromstring(_NOT_XML.sub("", html).encode("utf-8"), parser)
    except (etree.LxmlError, ValueError):
        return ""
    if root is None:  # nothing but whitespace or comments
        return ""
    for element in list(root.iter(*_DROPPED_TAGS)):
        element.clear(keep_tail=True)
    for element in root.iter("pre"):
        for inner in element.iter():
            if inner.text:
                inner.text = inner.text.replace("\n", _NEWLINE)
            if inner.tail and inner is not element:
                inner.tail = inner.tail.replace("\n", _NEWLINE)
    for element in root.iter("br"):
        element.tail = _NEWLINE + (element.tail or "")
    for element in root.iter("td", "th"):
        element.tail = " " + (element.tail or "")
    for tags, mark in ((_BLOCK_TAGS, _BREAK), (_PARAGRAPH_TAGS, _PARAGRAPH)):
        for element in root.iter(*tags):
            element.text = mark + (element.text or "")
            element.tail = mark + (element.tail or "")
    text = re.sub(r"\s+", " ", str(etree.tostring(root, method="text", encoding="unicode")))
    text = _BREAK_RUN.sub(lambda match: "\n\n" if _PARAGRAPH in match.group(0) else "\n", text)
    lines = (line.strip() for line in text.replace(_NEWLINE, "\n").split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _strip_history(text: str, *, forwarded: bool) -> str:
    """`text` without quoted history: cut at the first reply header ("On … wrote:", an
    Outlook header block) and drop trailing "> " lines and a trailing "-- " signature.
    A forward (by subject, or a forward marker before any reply header) is kept whole.
    A reply written below a "> "-quoted block (bottom-posting) keeps what follows it."""
    if forwarded:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        if not _MARKER_START.match(lines[index]):  # most lines; keeps long mails fast
            kept.append(lines[index])
            index += 1
            continue
        if _FORWARD.match(lines[index]):
            return "\n".join(kept + lines[index:])
        header = _reply_header_lines(lines, index)
        if not header:
            kept.append(lines[index])
            index += 1
            continue
        after = _quoted_block_end(lines, index + header)
        if after is None:
            break
        index = after
    if "-- " in kept:  # the signature goes first: a bottom-poster's comes after the quote
        kept = kept[: len(kept) - 1 - kept[::-1].index("-- ")]
    while kept and (kept[-1].startswith(">") or not kept[-1].strip()):
        kept.pop()
    return "\n".join(kept)


def _reply_header_lines(lines: list[str], index: int) -> int:
    """How many lines the reply header starting at `index` spans; 0 if none starts there."""
    line = lines[index]
    following = lines[index + 1] if index + 1 < len(lines) else ""
    # A date is always in a real "On … wrote:" line; "On Monday Bob wrote:" in prose has none.
    if _ON_WROTE.match(line) and re.search(r"\d", line):
        return 1
    if _ON.match(line) and _WROTE.match(following) and re.search(r"\d", line + following):
        return 2
    if _ORIGINAL.match(line) or _FROM_SENT.match(line):
        return 1
    if _OUTLOOK_RULE.match(line) and any(_FROM.match(next_line) for next_line in lines[index + 1 : index + 3]):
        return 1
    if _FROM.match(line) and any(_SENT.match(next_line) for next_line in lines[index + 1 : index + 3]):
        return 1
    return 0


def _quoted_block_end(lines: list[str], start: int) -> int | None:
    """Where the writer's text resumes after a "> "-quoted block that starts at `start`;
    None when the history runs to the end or is not quoted (then it is all history)."""
    index = start
    quoted = False
    while index < len(lines) and (lines[index].startswith(">") or not lines[index].strip()):
        quoted = quoted or lines[index].startswith(">")
        index += 1
    return index if quoted and index < len(lines) else None


def _trim_blank_lines(text: str) -> str:
    lines = text.split("\n")
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_storable(value) for value in values if value))
