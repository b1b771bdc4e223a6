"""Conversations in the dashboard: a filtered list, and one conversation's transcript
with each message's citations, moderation verdicts, confidence, timings and feedback.
Every member of the organization reads them; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from bots.chat.rendering import citation_label, citation_link, citation_url
from bots.chat.selectors import conversations_filtered
from bots.models import Bot, Channel, Conversation, ConversationStatus, Feedback, Message
from bots.models import Role as MessageRole
from bots.moderation_log.findings import Piece, screened_pieces
from neo_support.access import dashboard_area
from neo_support.models import Organization
from neo_support.permissions import Area
from neo_support.selectors import membership_current
from retrieval.models import Chunk, Document

PAGE_SIZE = 50
SEARCH_MAX_CHARS = 200


class ConversationFilterForm(forms.Form):
    """The list's filters (GET); a blank or invalid field does not filter."""

    q = forms.CharField(required=False, max_length=SEARCH_MAX_CHARS, label="Search messages")
    bot = forms.ModelChoiceField(queryset=Bot.objects.none(), required=False, empty_label="All bots")
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ConversationStatus.choices])
    channel = forms.ChoiceField(required=False, choices=[("", "Any channel"), *Channel.choices])
    started_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    started_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bot"].queryset = Bot.objects.for_organization(organization)


@dashboard_area(Area.CONVERSATIONS)
@require_GET
def conversation_index(request: HttpRequest) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    form = ConversationFilterForm(request.GET, organization=membership.organization)
    form.is_valid()  # an invalid field is left out of cleaned_data, so it does not filter
    chosen = form.cleaned_data
    conversations = conversations_filtered(
        organization=membership.organization,
        bot=chosen.get("bot"),
        status=chosen.get("status") or "",
        channel=chosen.get("channel") or "",
        started_from=chosen.get("started_from"),
        started_to=chosen.get("started_to"),
        search=(chosen.get("q") or "").strip(),
    )
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dashboard/conversations.html", {"form": form, "page": page})


@dataclass
class CitationLink:
    number: str
    label: str  # the title and the heading in words (bots.chat.rendering.citation_label)
    href: str  # the source page, else the knowledge base's public help centre, else ""


@dataclass
class TranscriptEntry:
    message: Message
    pieces: list[Piece]
    marked_text: bool  # the visitor's own text with the flagged spans marked (pieces[0])
    markdown: bool  # bot and agent text is shown the way the widget renders it
    cited: list[dict[str, Any]]  # the message's citations with today's `url` and `heading`
    citations: list[CitationLink]
    feedback: list[Feedback]


def _cited(organization: Organization, messages: list[Message]) -> dict[int, list[dict[str, Any]]]:
    """Each message's citations as shown now: `url` by the rule replies are saved with
    (bots.chat.rendering.citation_link), so older messages link too, and `heading`, the
    cited passage's heading as written when the chunk still exists."""
    stored = {m.pk: [c for c in m.citations if isinstance(c, dict)] for m in messages if isinstance(m.citations, list)}
    cited = [c for citations in stored.values() for c in citations]
    document_ids = {c["document_id"] for c in cited if isinstance(c.get("document_id"), int)}
    chunk_ids = {c["chunk_id"] for c in cited if isinstance(c.get("chunk_id"), int)}
    # Only documents of this organization are read, whatever a stored citation says.
    sources = {
        pk: (source_url, public_base_url)
        for pk, source_url, public_base_url in Document.objects.for_organization(organization)
        .filter(pk__in=document_ids)
        .values_list("pk", "source_url", "knowledge_base__public_base_url")
    }
    headings = {
        (pk, document_id): path[-1]
        for pk, document_id, path in Chunk.objects.for_organization(organization)
        .filter(pk__in=chunk_ids)
        .values_list("pk", "document_id", "heading_path")
        if isinstance(path, list) and path and isinstance(path[-1], str)
    }
    shown: dict[int, list[dict[str, Any]]] = {}
    for message_id, citations in stored.items():
        for citation in citations:
            document_id, chunk_id = citation.get("document_id"), citation.get("chunk_id")
            location = str(citation.get("location") or "")
            if isinstance(document_id, int) and document_id in sources:
                source_url, public_base_url = sources[document_id]
                url = citation_link(source_url=source_url, public_base_url=public_base_url, location=location)
            else:  # a deleted document: the link it was saved with
                url = citation_url(citation)
            heading = headings.get((chunk_id, document_id), "") if isinstance(chunk_id, int) else ""
            shown.setdefault(message_id, []).append({**citation, "url": url, "heading": heading})
    return shown


def transcript(*, organization: Organization, conversation: Conversation) -> list[TranscriptEntry]:
    """The conversation's messages, oldest first, each with what the dashboard shows of it."""
    messages = list(
        conversation.messages.select_related("author").prefetch_related("feedback").order_by("created_at", "pk")
    )
    cited = _cited(organization, messages)
    entries = []
    for message in messages:
        from_visitor = message.role == MessageRole.VISITOR
        # Verdicts that found nothing (most of a reply's sentences) are not worth a line each.
        screened = screened_pieces(text=message.text, verdicts=message.moderation, from_visitor=from_visitor)
        pieces = [piece for piece in screened if piece.findings]
        citations = cited.get(message.pk, [])
        entries.append(
            TranscriptEntry(
                message=message,
                pieces=pieces,
                marked_text=from_visitor and bool(pieces),
                markdown=message.role in (MessageRole.BOT, MessageRole.AGENT),
                cited=citations,
                citations=[
                    CitationLink(
                        number=str(citation.get("number", "")), label=citation_label(citation), href=citation["url"]
                    )
                    for citation in citations
                ],
                feedback=list(message.feedback.all()),
            )
        )
    return entries


@dashboard_area(Area.CONVERSATIONS)
@require_GET
def conversation_detail(request: HttpRequest, conversation_id: int) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    conversation = (
        Conversation.objects.for_organization(membership.organization)
        .select_related("bot", "assignee", "ticket")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    entries = transcript(organization=membership.organization, conversation=conversation)
    return render(request, "dashboard/conversation.html", {"conversation": conversation, "entries": entries})
