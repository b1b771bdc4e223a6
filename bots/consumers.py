"""Websocket consumers. The chat consumer arrives with the widget; this file
holds the fallback that turns away sockets opened on unknown paths."""

from __future__ import annotations

from channels.generic.websocket import WebsocketConsumer

# Application close codes (4000-4999) are documented in docs/protocol.md.
CLOSE_UNKNOWN_PATH = 4404


class UnknownPathConsumer(WebsocketConsumer):
    """Accepts only to close at once with 4404, so clients can tell a wrong URL from a network fault."""

    def connect(self) -> None:
        self.accept()
        self.close(code=CLOSE_UNKNOWN_PATH)
