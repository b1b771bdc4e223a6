"""The one way workers send events to the browsers watching a conversation."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from bots.events import ReplyEvent, conversation_group


def publish(conversation_id: int, event: ReplyEvent) -> None:
    """Send `event` to every socket of the conversation (consumers handle type `chat.event`)."""
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(conversation_group(conversation_id), {"type": "chat.event", "event": event})
