"""The chat protocol's frames, checked before anything acts on them (docs/protocol.md).

Pure Python: `parse_frame` turns raw websocket text into a validated client frame or
raises `FrameError` carrying the error code the client is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1

# Close codes (the socket ends).
CLOSE_BAD_REQUEST = 4400  # no bot key in the URL, or an unsupported protocol version
CLOSE_ORIGIN_REFUSED = 4403  # the page's origin is not among the bot's allowed origins
CLOSE_UNKNOWN_BOT = 4404  # no such bot key (or a path that is not a chat socket)
CLOSE_HELLO_TIMEOUT = 4408  # no `hello` in time
CLOSE_TOO_MANY_ERRORS = 4409  # too many bad frames in a row
CLOSE_RATE_LIMITED = 4429  # too many connections from this address
CLOSE_TRY_AGAIN_LATER = 1013  # Redis or Postgres is briefly unavailable (RFC 6455 "Try Again Later")

MAX_CLIENT_ID = 64
MAX_COMMENT = 1000


class FrameError(Exception):
    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = False
    max_length: int | None = None
    choices: tuple[Any, ...] | None = None


SCHEMAS: dict[str, dict[str, Field]] = {
    "hello": {
        "v": Field(int),
        "visitor_token": Field((str, type(None)), max_length=400),
        "last_event_id": Field((str, type(None)), max_length=40),
        "page": Field((str, type(None)), max_length=2000),
        "locale": Field((str, type(None)), max_length=20),
        # The dashboard's test chat; honoured only from this server's own pages.
        "test": Field(bool),
    },
    "message": {
        "client_id": Field(str, required=True, max_length=MAX_CLIENT_ID),
        "text": Field(str, required=True),
    },
    "feedback": {
        "message_id": Field(int, required=True),
        "rating": Field(int, required=True, choices=(1, -1)),
        "comment": Field(str, max_length=MAX_COMMENT),
    },
    "handoff_request": {"reason": Field(str, max_length=MAX_COMMENT)},
    "identify": {
        "name": Field(str, max_length=200),
        "email": Field(str, max_length=254),
        "external_id": Field(str, max_length=200),
    },
    "stop": {"message_id": Field(int)},
    "typing": {},
    "ping": {},
}


def parse_frame(text: str | None, *, max_bytes: int) -> dict[str, Any]:
    """The client frame in `text`, checked against its type's schema."""
    if text is None:
        raise FrameError("invalid_frame", "Frames must be JSON text, not binary.")
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("frame_too_large", f"Frames may be at most {max_bytes} bytes.", limit=max_bytes)
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("invalid_json", "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise FrameError("invalid_frame", "A frame must be a JSON object with a `type`.")
    kind = frame.get("type")
    if not isinstance(kind, str) or kind not in SCHEMAS:
        raise FrameError("unknown_type", f"Unknown frame type {str(kind)[:40]!r}.", known=sorted(SCHEMAS))
    schema = SCHEMAS[kind]
    for name, value in frame.items():
        if name == "type":
            continue
        field = schema.get(name)
        if field is None:
            raise FrameError("invalid_frame", f"`{kind}` frames have no field {name[:40]!r}.", field=name[:40])
        _check(kind, name, value, field)
    for name, field in schema.items():
        if field.required and name not in frame:
            raise FrameError("invalid_frame", f"`{kind}` frames need `{name}`.", field=name)
    return frame


def _check(kind: str, name: str, value: Any, field: Field) -> None:
    # bool is an int in Python; JSON true is not a message id.
    kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, field.kind):
        raise FrameError("invalid_frame", f"`{name}` in `{kind}` has the wrong type.", field=name)
    if field.max_length is not None and isinstance(value, str) and len(value) > field.max_length:
        raise FrameError("invalid_frame", f"`{name}` is longer than {field.max_length} characters.", field=name)
    if field.choices is not None and value not in field.choices:
        raise FrameError("invalid_frame", f"`{name}` must be one of {list(field.choices)}.", field=name)
