"""Reads about one person: who they are (by email address, visitor id or ticket), and
every row and file that holds their data. Used by the page, the export and the erasure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Count, Q, QuerySet

from bots.models import (
    Attachment,
    Conversation,
    Feedback,
    Message,
    ModelVersion,
    PersonErasure,
    RetentionPolicy,
    RetentionRun,
    Ticket,
    WebhookDelivery,
)
from bots.tuning.adapter_files import adapter_dataset
from neo_support.models import Organization

KeyKind = Literal["email", "visitor_id", "ticket"]
KEY_KINDS: tuple[KeyKind, ...] = ("email", "visitor_id", "ticket")
# A person found by one identifier may have used others (the email they gave the widget,
# the visitor id of the tab they chatted in): the search follows them this many times.
FOLLOW_ROUNDS = 4


class PersonKeyInvalid(ValueError):  # noqa: N818 - shown to the person, not a crash
    """What was typed cannot identify anybody; the message says why."""


@dataclass(frozen=True)
class PersonKey:
    """What identifies the person: an email address, a widget visitor id, or a ticket
    (its id or its token, "K7Q2MX9A"), whose requester is the person."""

    kind: KeyKind
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> PersonKey:
        value = value.strip()
        if kind not in KEY_KINDS:  # narrows `kind` to KeyKind for the type checker too
            raise PersonKeyInvalid(f"Search by one of: {', '.join(KEY_KINDS)}.")
        if not value:
            raise PersonKeyInvalid("Type what identifies the person.")
        if len(value) > 254:
            raise PersonKeyInvalid("That is longer than any email address, visitor id or ticket.")
        if kind == "email":
            try:
                validate_email(value)
            except ValidationError:
                raise PersonKeyInvalid("That is not an email address.") from None
            value = value.lower()
        return cls(kind, value)

    def hashed(self, organization: Organization) -> str:
        """What an erasure keeps of the person: a SHA-256 salted with the organization."""
        return hashlib.sha256(f"{organization.pk}:{self.kind}:{self.value}".encode()).hexdigest()

    def hint(self) -> str:
        """A masked form for the erasures list ("j***@e***.com"), not enough to identify."""
        if self.kind == "email":
            local, _, domain = self.value.partition("@")
            name, dot, tld = domain.rpartition(".")
            return f"{local[:1]}***@{name[:1]}***{dot}{tld}"
        return f"{self.kind} {self.value[:2]}***"


@dataclass
class Person:
    """Everything that identifies one person in one organization, and their conversations
    (every chat, emailed ticket and API conversation is one)."""

    organization: Organization
    emails: set[str] = field(default_factory=set)
    visitor_ids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    conversation_ids: set[int] = field(default_factory=set)

    @property
    def found(self) -> bool:
        return bool(self.conversation_ids)

    def conversations(self) -> QuerySet[Conversation]:
        return Conversation.objects.for_organization(self.organization).filter(pk__in=sorted(self.conversation_ids))

    def messages(self) -> QuerySet[Message]:
        return Message.objects.filter(conversation__in=self.conversations())

    def tickets(self) -> QuerySet[Ticket]:
        return Ticket.objects.filter(conversation__in=self.conversations())

    def attachments(self) -> QuerySet[Attachment]:
        return Attachment.objects.filter(message__conversation__in=self.conversations())

    def feedback(self) -> QuerySet[Feedback]:
        return Feedback.objects.filter(message__conversation__in=self.conversations())

    def moderated_messages(self) -> QuerySet[Message]:
        return self.messages().exclude(moderation=[])

    def webhook_deliveries(self) -> QuerySet[WebhookDelivery]:
        """Deliveries whose payload is about the person's tickets or messages."""
        ticket_ids = list(self.tickets().values_list("pk", flat=True))
        condition = Q(pk__in=[])
        if ticket_ids:
            condition |= Q(event__startswith="ticket.", payload__data__id__in=ticket_ids)
            condition |= Q(event="message.created", payload__data__ticket__in=ticket_ids)
        if self.emails:
            condition |= Q(payload__data__requester_email__in=sorted(self.emails))
        return WebhookDelivery.objects.for_organization(self.organization).filter(condition)


def person_find(*, organization: Organization, key: PersonKey) -> Person:
    """The person `key` identifies, following the other email addresses and visitor ids
    their conversations show. Nothing found: `person.found` is false."""
    person = Person(organization)
    conversations = Conversation.objects.for_organization(organization)
    if key.kind == "email":
        person.emails.add(key.value)
    elif key.kind == "visitor_id":
        person.visitor_ids.add(key.value)
    else:
        ticket = Ticket.objects.for_organization(organization).filter(_ticket_lookup(key.value)).first()
        if ticket is None:
            return person
        person.conversation_ids.add(ticket.conversation_id)
        if ticket.requester_email:
            person.emails.add(ticket.requester_email.lower())
    for _ in range(FOLLOW_ROUNDS):
        before = (len(person.emails), len(person.visitor_ids), len(person.conversation_ids))
        condition = Q(pk__in=sorted(person.conversation_ids)) | Q(visitor_id__in=sorted(person.visitor_ids))
        for email in person.emails:
            condition |= Q(visitor_info__email__iexact=email) | Q(ticket__requester_email__iexact=email)
        rows = conversations.filter(condition).values_list(
            "pk", "visitor_id", "visitor_info", "ticket__requester_email", "ticket__requester_name"
        )
        for pk, visitor_id, info, requester_email, requester_name in rows:
            person.conversation_ids.add(pk)
            person.visitor_ids.add(visitor_id)
            info = info if isinstance(info, dict) else {}
            for address in (info.get("email"), requester_email):
                if isinstance(address, str) and address:
                    person.emails.add(address.lower())
            for name in (info.get("name"), requester_name):
                if isinstance(name, str) and name.strip():
                    person.names.add(name.strip())
        if (len(person.emails), len(person.visitor_ids), len(person.conversation_ids)) == before:
            break
    return person


def _ticket_lookup(value: str) -> Q:
    return Q(pk=int(value)) if value.isdigit() and len(value) < 12 else Q(token=value.upper())


def dataset_path(version: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT) / version.adapter_dir / "dataset.jsonl"


def training_versions(person: Person) -> QuerySet[ModelVersion]:
    """The tuned versions of the bots the person spoke to (whose datasets may hold them)."""
    bot_ids = person.conversations().values("bot_id")
    return ModelVersion.objects.for_organization(person.organization).filter(bot_id__in=bot_ids).order_by("pk")


def person_groups(conversation_ids: set[int] | list[int]) -> set[str]:
    """The training examples' `group` of these conversations (workers.training.dataset)."""
    return {f"conversation-{pk}" for pk in conversation_ids}


def training_examples_of(person: Person) -> Iterator[tuple[ModelVersion, dict[str, Any]]]:
    """Each stored training example made from the person's conversations, with its version."""
    groups = person_groups(person.conversation_ids)
    for version in training_versions(person):
        for example in dataset_examples(version):
            if example.get("group") in groups:
                yield version, example


def dataset_examples(version: ModelVersion) -> Iterator[dict[str, Any]]:
    """The examples of the version's stored dataset: this host's copy, else the one in
    object storage (bots.tuning.adapter_files), else none."""
    stored = adapter_dataset(version=version)
    if stored is None:
        return
    with stored:
        for line in stored:
            if line.strip():
                yield json.loads(line)


def person_counts(person: Person, *, examples: int | None = None) -> dict[str, int]:
    """Rows held about the person, by kind; training examples are counted by reading the
    datasets unless the caller already has the number."""
    if examples is None:
        examples = sum(1 for _ in training_examples_of(person))
    return {
        "conversations": len(person.conversation_ids),
        "messages": person.messages().count(),
        "tickets": person.tickets().count(),
        "attachments": person.attachments().count(),
        "feedback": person.feedback().count(),
        "moderation_records": person.moderated_messages().count(),
        "webhook_deliveries": person.webhook_deliveries().count(),
        "training_examples": examples,
    }


def person_overview(person: Person) -> dict[str, Any]:
    """What the privacy page shows of the person: identifiers, counts, and the
    conversations with their tickets."""
    conversations = (
        person.conversations()
        .select_related("bot", "ticket")
        .annotate(message_count=Count("messages"))
        .order_by("-created_at")
    )
    examples: dict[str, int] = {}
    for version, _example in training_examples_of(person):
        label = f"{version.bot.name} {version.label}"
        examples[label] = examples.get(label, 0) + 1
    counts = person_counts(person, examples=sum(examples.values()))
    return {
        "emails": sorted(person.emails),
        "visitor_ids": sorted(person.visitor_ids),
        "names": sorted(person.names),
        "conversations": list(conversations),
        "counts": {name.replace("_", " "): count for name, count in counts.items()},
        "training_examples": examples,
        "identify_data": [c.visitor_info for c in conversations if c.visitor_info],
    }


def erasures_of(organization: Organization, *, limit: int = 20) -> list[PersonErasure]:
    return list(PersonErasure.objects.for_organization(organization).order_by("-created_at", "-id")[:limit])


def retention_policy_of(organization: Organization) -> RetentionPolicy:
    """The organization's policy; an unsaved one (everything kept forever) when none is set."""
    found: RetentionPolicy | None = RetentionPolicy.objects.filter(organization=organization).first()
    return found or RetentionPolicy(organization=organization)


def retention_runs_of(organization: Organization, *, limit: int = 10) -> list[RetentionRun]:
    return list(RetentionRun.objects.for_organization(organization).order_by("-started_at", "-id")[:limit])
