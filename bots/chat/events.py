"""Typed events a reply produces, shared by the worker that sends them and the
consumer that forwards them to the widget (docs/protocol.md once the widget lands).

Workers send them to the group `conversation.<id>` through `bots.chat.publishing`.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class Citation(TypedDict):
    number: int
    chunk_id: int
    document_id: int
    title: str
    location: str
    url: str  # the document's web address, when it came from one


class DeltaEvent(TypedDict):
    type: Literal["delta"]
    message_id: int
    seq: int
    text: str


class ResetEvent(TypedDict):
    """A reply restarted (a retried task): clients drop what they showed of it."""

    type: Literal["reset"]
    message_id: int


class DoneEvent(TypedDict):
    type: Literal["done"]
    message_id: int
    text: str
    citations: list[Citation]
    confidence: float | None
    handoff_suggested: bool
    status: Literal["done", "failed", "blocked"]


class StatusEvent(TypedDict):
    """`handed_off`: waiting for a person; `agent_joined`: a person holds the chat (`agent`
    names them); `returned_to_bot`: the person handed it back and the bot answers again."""

    type: Literal["status"]
    status: Literal["bot_typing", "bot_idle", "agent_joined", "handed_off", "returned_to_bot"]
    agent: NotRequired[str]


class ErrorEvent(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    message_id: int | None


class AgentMessage(TypedDict):
    id: int
    role: Literal["agent"]
    text: str
    created_at: str  # ISO 8601
    author: str  # the person's display name (bots.chat.selectors.agent_display_name), never an email


class AgentMessageEvent(TypedDict):
    """A person's reply from the agents' inbox, delivered to a handed-off chat (bots.tickets.inbox)."""

    type: Literal["agent_message"]
    message: AgentMessage


ReplyEvent = DeltaEvent | ResetEvent | DoneEvent | StatusEvent | ErrorEvent | AgentMessageEvent


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"
