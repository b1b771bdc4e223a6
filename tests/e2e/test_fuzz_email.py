"""MIME fuzzing of the email parser: generated messages (headers of every kind with
encoded words, charsets real and not, multiparts nested, broken and unterminated,
transfer encodings, raw bytes) and random mutations of real ones. Every input either
parses to storable text or is refused as "not an email"; nothing else ever escapes.

A bounded run here (NEO_FUZZ_EXAMPLES, 25 by default, times 8); `bench/fuzz.py` runs it long."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.tickets.email_parsing import EmailParseError, InboundEmail, parse_email

EXAMPLES = int(os.environ.get("NEO_FUZZ_EXAMPLES", "25")) * 8
HEADER_NAMES = [
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Content-Type",
    "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version", "Auto-Submitted", "Precedence",
    "X-Autoreply", "Return-Path", "Reply-To",
]  # fmt: skip
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "shift_jis", "koi8-r", "utf-16", "x-unknown", "", "utf-8'en'"]
CONTENT_TYPES = ["text/plain", "text/html", "multipart/mixed", "multipart/alternative", "message/rfc822",
                 "application/pdf", "image/png", "multipart/related", "text/calendar", "bogus", ""]  # fmt: skip
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "binary", "x-uuencode", ""]

line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=80)
encoded_word = st.builds(
    lambda charset, kind, text: f"=?{charset}?{kind}?{text}?=",
    st.sampled_from(CHARSETS),
    st.sampled_from(["Q", "B", "q", "x"]),
    st.text(st.characters(codec="ascii", blacklist_characters="\r\n?"), max_size=30),
)
header_value = st.one_of(line_text, encoded_word, st.lists(encoded_word | line_text, max_size=4).map(" ".join))


@st.composite
def mime_part(draw: st.DrawFn, depth: int = 0) -> str:
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    boundary = draw(st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=0, max_size=12))
    headers = [
        f'Content-Type: {content_type}; charset={draw(st.sampled_from(CHARSETS))}; boundary="{boundary}"',
        f"Content-Transfer-Encoding: {draw(st.sampled_from(ENCODINGS))}",
    ]
    if draw(st.booleans()):
        headers.append(f'Content-Disposition: attachment; filename="{draw(line_text)}"')
    if content_type.startswith("multipart") and depth < 3:
        children = draw(st.lists(st.deferred(lambda: mime_part(depth + 1)), max_size=3))
        closing = draw(st.sampled_from([f"--{boundary}--", "", f"--{boundary}"]))  # terminated or not
        body = "".join(f"--{boundary}\r\n{child}\r\n" for child in children) + closing
    else:
        body = "\r\n".join(draw(st.lists(line_text, max_size=6)))
    return "\r\n".join(headers) + "\r\n\r\n" + body


@st.composite
def emails(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=10))
    head = "\r\n".join(f"{name}: {value}" for name, value in headers)
    text = head + "\r\n" + draw(mime_part())
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.booleans()):  # mutate: flip, cut or splice raw bytes
        position = draw(st.integers(0, max(0, len(data) - 1)))
        data = data[:position] + draw(st.binary(max_size=20)) + data[position + draw(st.integers(0, 20)) :]
    return data


def check(raw: bytes) -> None:
    try:
        parsed = parse_email(raw, max_attachment_bytes=1024)
    except EmailParseError:
        assert not raw.strip()
        return
    assert isinstance(parsed, InboundEmail)
    for text in (parsed.subject, parsed.text, parsed.new_text, parsed.from_name, parsed.from_address):
        assert isinstance(text, str) and "\x00" not in text
        text.encode("utf-8")  # storable: no lone surrogates
    assert all(len(attachment.data) <= 1024 for attachment in parsed.attachments)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(raw=emails())
def test_generated_mime_parses_or_is_refused_cleanly(raw: bytes) -> None:
    check(raw)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_are_refused_cleanly(raw: bytes) -> None:
    check(raw)
