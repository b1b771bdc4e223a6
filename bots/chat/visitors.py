"""Signed visitor tokens: who a widget visitor is and which conversation is theirs.

A token is issued by the server on the first `hello` and kept by the widget; it is
signed with the site's secret key (salted per purpose), bound to one bot, and expires
after NEO_VISITOR_TOKEN_DAYS. A forged, foreign or expired token gives nothing away:
the client is told why and starts afresh.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core import signing

SALT = "neo.visitor-token"


class VisitorTokenError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Visitor:
    bot_id: int
    visitor_id: str
    conversation_id: int | None


def new_visitor_id() -> str:
    return f"v_{secrets.token_urlsafe(12)}"


def visitor_token_issue(visitor: Visitor) -> str:
    payload = {"b": visitor.bot_id, "v": visitor.visitor_id, "c": visitor.conversation_id}
    return cast(str, signing.dumps(payload, salt=SALT, compress=False))


def visitor_token_read(token: object, *, bot_id: int) -> Visitor:
    """The visitor a token names; VisitorTokenError (code `token_invalid` or
    `token_expired`) when it is malformed, forged, for another bot, or too old."""
    if not isinstance(token, str) or not token or len(token) > 400:
        raise VisitorTokenError("token_invalid", "The visitor token is malformed.")
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.NEO_VISITOR_TOKEN_DAYS * 86400)
    except signing.SignatureExpired:
        raise VisitorTokenError("token_expired", "The visitor token has expired; a new conversation starts.") from None
    except signing.BadSignature:
        raise VisitorTokenError("token_invalid", "The visitor token is not valid.") from None
    if not isinstance(payload, dict) or payload.get("b") != bot_id or not isinstance(payload.get("v"), str):
        raise VisitorTokenError("token_invalid", "The visitor token is not valid for this bot.")
    conversation_id = payload.get("c")
    if conversation_id is not None and not isinstance(conversation_id, int):
        raise VisitorTokenError("token_invalid", "The visitor token is not valid.")
    return Visitor(bot_id=bot_id, visitor_id=payload["v"], conversation_id=conversation_id)
