"""Which pages may open a bot's chat."""

from __future__ import annotations

import pytest

from bots.chat.origins import normalise_origin, origin_allowed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://localhost:8000/", "http://localhost:8000"),
        ("https://shop.example/path", None),
        ("javascript:alert(1)", None),
        ("https://user:pw@shop.example", None),
        ("null", None),
    ],
)
def test_origins_are_normalised_or_refused(value: str, expected: str | None) -> None:
    assert normalise_origin(value) == expected


ALLOWED = ["https://shop.example", "https://*.example.org"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example", True),
        ("https://SHOP.example:443", True),
        ("http://shop.example", False),  # another scheme is another origin
        ("https://help.example.org", True),
        ("https://a.b.example.org", True),
        ("https://example.org", False),
        ("https://evilexample.org", False),
        ("https://example.org.evil.com", False),
        ("http://testserver", True),  # this server's own pages
        (None, False),
        ("null", False),
    ],
)
def test_origin_allowed(origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, allowed=ALLOWED, own_host="testserver", secure=False) is allowed
