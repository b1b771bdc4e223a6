"""`ticket_receive_email` on real-world mail (issue 23): parsed in the parser child under the
upload limits, what the parser recovers stored as it should be (also on PostgreSQL, which
refuses NUL). Every message is built here."""

from __future__ import annotations

from typing import Any

import pytest

from bots.models import Role
from bots.tickets import services
from bots.tickets.email_parsing import EmailParseError
from bots.tickets.services import ticket_receive_email
from retrieval.loaders import LoaderError
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db

CRLF = b"\r\n"


def raw_email(*headers: bytes, body: bytes = b"The printer jams on page 2.") -> bytes:
    return CRLF.join(headers) + CRLF + CRLF + body


def test_a_sender_without_angle_brackets_gets_a_ticket() -> None:
    # Regression: "From: Big Bug bb@bug.com" gave no sender, so the mail was ignored.
    outcome = ticket_receive_email(bot=BotFactory(), raw=raw_email(b"From: Big Bug bb@bug.com", b"Subject: Jam"))
    assert outcome.status == "created" and outcome.ticket is not None
    assert (outcome.ticket.requester_email, outcome.ticket.requester_name) == ("bb@bug.com", "Big Bug")


def test_control_characters_in_every_field_are_stored_clean() -> None:
    raw = raw_email(
        b"From: =?utf-8?q?Jo=00_Blog=07gs?= <jo@example.com>",
        b"Subject: =?utf-8?q?Printer=00_jam=1B?=",
        b"Content-Type: text/plain; charset=utf-8",
        body=b"The printer\x00 jams\x07 on page 2.\r\n\tThanks",
    )
    outcome = ticket_receive_email(bot=BotFactory(), raw=raw)
    assert outcome.ticket is not None and outcome.message is not None
    assert (outcome.ticket.subject, outcome.ticket.requester_name) == ("Printer jam", "Jo Bloggs")
    assert outcome.message.text == "The printer jams on page 2.\n\tThanks"


def test_a_latin1_body_declared_utf8_is_stored_with_its_umlauts() -> None:
    body = "Grüße aus München: der Drucker klemmt, bitte prüfen Sie das.".encode("latin-1")
    raw = raw_email(b"From: jo@example.com", b"Content-Type: text/plain; charset=utf-8", body=body)
    outcome = ticket_receive_email(bot=BotFactory(), raw=raw)
    assert outcome.message is not None
    assert outcome.message.text == "Grüße aus München: der Drucker klemmt, bitte prüfen Sie das."


def test_mail_is_parsed_in_the_parser_child(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("parsed in the worker process")

    monkeypatch.setattr(services, "parse_email", not_here)
    outcome = ticket_receive_email(bot=BotFactory(), raw=raw_email(b"From: jo@example.com"))
    assert outcome.status == "created"
    with pytest.raises(EmailParseError, match="empty input"):  # the child's refusal comes back as itself
        ticket_receive_email(bot=BotFactory(), raw=b" \r\n ")


def test_mail_that_outruns_the_parsers_cpu_limit_fails_alone(settings: Any, client: Any) -> None:
    # A MIME part's folded Content-Type of 200 kB takes the stdlib's parser seconds; the
    # child's CPU limit stops it, and the next mail is read as usual.
    settings.NEO_PARSER_CPU_SECONDS = 1
    folded = b"\r\n ".join(b"p%d=v%d;" % (number, number) for number in range(16000))
    raw = raw_email(
        b"From: jo@example.com",
        b'Content-Type: multipart/mixed; boundary="b"',
        body=b"--b\r\nContent-Type: text/plain; " + folded + b"\r\n\r\nHello\r\n--b--\r\n",
    )
    with pytest.raises(LoaderError, match="processor time"):
        ticket_receive_email(bot=BotFactory(), raw=raw)
    assert ticket_receive_email(bot=BotFactory(), raw=raw_email(b"From: jo@example.com")).status == "created"


def test_oversized_header_fields_are_left_unread_logged_and_the_mail_stored(caplog: pytest.LogCaptureFixture) -> None:
    recipients = b"\r\n ".join(b"user%d@example.com," % number for number in range(40000))  # 800 kB, folded
    raw = raw_email(b"From: Jo <jo@example.com>", b"To: " + recipients, b"Subject: Printer jam")
    outcome = ticket_receive_email(bot=BotFactory(), raw=raw)
    assert outcome.ticket is not None and outcome.ticket.subject == "Printer jam"
    assert outcome.message is not None and outcome.message.role == Role.VISITOR
    assert "To header (965.7 kB) not read: over the 16 kB limit for one field" in caplog.text
