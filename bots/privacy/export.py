"""A person's data as one zip archive (JSON plus their attachment files), written as it
is read: the response streams, so a person with thousands of messages is never held in
memory. The archive's layout is described in docs/privacy.md."""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from bots.models import Attachment, Conversation, Feedback, Message, Ticket
from bots.privacy.selectors import Person, training_examples_of

CHUNK_BYTES = 64 * 1024
MESSAGE_BATCH = 200


class _Sink(io.RawIOBase):
    """Where zipfile writes; the generator hands on what piled up. Not seekable, so
    zipfile writes data descriptors after each member instead of seeking back."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.size = 0
        return data


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, default=str).encode()


def _write_array(handle: IO[bytes], items: Iterable[Any], sink: _Sink) -> Iterator[bytes]:
    """Write `items` as a JSON array into the member `handle`, yielding the archive's
    bytes whenever enough have piled up."""
    handle.write(b"[")
    for index, item in enumerate(items):
        handle.write((b",\n" if index else b"\n") + _json(item))
        if sink.size >= CHUNK_BYTES:
            yield sink.take()
    handle.write(b"\n]\n")


def attachment_name(attachment: Attachment) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in attachment.filename)[:120] or "attachment"
    return f"attachments/{attachment.pk}-{safe}"


def _ticket(ticket: Ticket | None) -> dict[str, Any] | None:
    if ticket is None:
        return None
    return {
        "id": ticket.pk,
        "token": ticket.token,
        "subject": ticket.subject,
        "requester_email": ticket.requester_email,
        "requester_name": ticket.requester_name,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "summary": ticket.summary,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
    }


def _messages(conversation: Conversation) -> Iterator[dict[str, Any]]:
    feedback: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in Feedback.objects.filter(message__conversation=conversation).order_by("pk"):
        feedback[row.message_id].append({"rating": row.rating, "comment": row.comment, "created_at": row.created_at})
    attachments: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for attachment in Attachment.objects.filter(message__conversation=conversation).order_by("pk"):
        attachments[attachment.message_id].append(
            {
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size_bytes": attachment.size_bytes,
                "file": attachment_name(attachment),
            }
        )
    messages = Message.objects.filter(conversation=conversation).order_by("created_at", "pk")
    for message in messages.iterator(chunk_size=MESSAGE_BATCH):
        yield {
            "id": message.pk,
            "role": message.role,
            "text": message.text,
            "status": message.status,
            "created_at": message.created_at,
            "moderation": message.moderation,
            "moderation_review": message.moderation_review,
            "citations": message.citations,
            "feedback": feedback.get(message.pk, []),
            "attachments": attachments.get(message.pk, []),
        }


def _conversation_parts(conversation: Conversation) -> tuple[bytes, bytes]:
    """The conversation's JSON object split around its "messages" array."""
    head = {
        "id": conversation.pk,
        "bot": conversation.bot.name,
        "channel": conversation.channel,
        "visitor_id": conversation.visitor_id,
        "identify_data": conversation.visitor_info,
        "status": conversation.status,
        "created_at": conversation.created_at,
        "last_activity_at": conversation.last_activity_at,
        "ticket": _ticket(getattr(conversation, "ticket", None)),
    }
    text = _json(head)
    return text[:-1] + b', "messages": ', b"}"


def person_archive(person: Person) -> Iterator[bytes]:
    """The zip archive's bytes, in pieces: person.json, conversations.json (each with its
    ticket, messages, moderation verdicts, feedback and attachments' names),
    webhook_deliveries.json, training_examples.json and attachments/."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        summary = {
            "exported_at": timezone.now(),
            "organization": person.organization.name,
            "emails": sorted(person.emails),
            "visitor_ids": sorted(person.visitor_ids),
            "names": sorted(person.names),
            "conversation_ids": sorted(person.conversation_ids),
        }
        archive.writestr("person.json", _json(summary))
        with archive.open("conversations.json", mode="w") as handle:
            handle.write(b"[")
            conversations = person.conversations().select_related("bot", "ticket").order_by("created_at", "pk")
            for index, conversation in enumerate(conversations.iterator(chunk_size=100)):
                head, tail = _conversation_parts(conversation)
                handle.write((b",\n" if index else b"\n") + head)
                yield from _write_array(handle, _messages(conversation), sink)
                handle.write(tail)
            handle.write(b"\n]\n")
        yield sink.take()
        with archive.open("webhook_deliveries.json", mode="w") as handle:
            deliveries = person.webhook_deliveries().order_by("pk").iterator(chunk_size=MESSAGE_BATCH)
            rows = (
                {"id": d.pk, "event": d.event, "status": d.status, "created_at": d.created_at, "payload": d.payload}
                for d in deliveries
            )
            yield from _write_array(handle, rows, sink)
        with archive.open("training_examples.json", mode="w") as handle:
            examples = (
                {"bot": version.bot.name, "model_version": version.label, **example}
                for version, example in training_examples_of(person)
            )
            yield from _write_array(handle, examples, sink)
        yield sink.take()
        for attachment in person.attachments().order_by("pk").iterator(chunk_size=100):
            if not attachment.file or not attachment.file.storage.exists(attachment.file.name):
                continue
            with attachment.file.open("rb") as source, archive.open(attachment_name(attachment), mode="w") as target:
                while chunk := source.read(CHUNK_BYTES):
                    target.write(chunk)
                    yield sink.take()
    yield sink.take()


def archive_response(person: Person) -> StreamingHttpResponse:
    """The archive as a download, streamed, never cached."""
    response = StreamingHttpResponse(person_archive(person), content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="person-data-{stamp}.zip"'
    response["Cache-Control"] = "no-store"
    return response
