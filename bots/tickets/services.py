"""Support tickets: created from email, the API and chat handoffs; threaded; triaged;
answered automatically when that is safe, else drafted for an agent.

A ticket is a Conversation (channel email or api) with a Ticket row; every email in
and every reply out is a Message of that conversation, so agents read one thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from bots.models import (
    Attachment,
    Bot,
    Channel,
    Conversation,
    ConversationStatus,
    Delivery,
    Message,
    MessageStatus,
    Role,
    Ticket,
    TicketMode,
    TicketStatus,
)
from bots.tickets.email_parsing import EmailParseError, InboundEmail, parse_email
from bots.webhooks.services import webhooks_emit_message, webhooks_emit_ticket
from neo_support.tasking import enqueue, enqueue_for_model
from retrieval.loaders.isolation import ChildError, run_isolated
from retrieval.services.ingestion import parser_limits
from workers.moderation.verdicts import strongest_action

logger = logging.getLogger(__name__)

REOPENABLE = {TicketStatus.PENDING, TicketStatus.SOLVED}
CITATION = re.compile(r"\[\d+\]")
AUTOMATIC_NOTICE = (
    "This answer was written automatically by {bot} from our help articles. If it did not help, just reply "
    "to this email and a person from our team will take over."
)


class TicketRejected(Exception):  # noqa: N818 - shown to the caller, not a crash
    """The input cannot become a ticket; the message says why."""


@dataclass(frozen=True)
class EmailOutcome:
    """What happened to one inbound email."""

    status: str  # created | threaded | reopened | follow_up | duplicate | ignored
    ticket: Ticket | None = None
    message: Message | None = None
    reason: str = ""


def inbound_signature_valid(*, bot: Bot, body: bytes, signature: str) -> bool:
    """`signature` is "sha256=<hex>" of HMAC-SHA256(bot.inbound_secret, body)."""
    expected = "sha256=" + hmac.new(bot.inbound_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip())


def ticket_receive_email(*, bot: Bot, raw: bytes) -> EmailOutcome:
    """Store one inbound email as a ticket or as a message of the ticket it answers.

    Threading: In-Reply-To and References against the Message-IDs we stored or sent,
    then the "[#TOKEN]" in the subject. Machine-sent mail (auto-replies, bounces) is
    dropped so two auto-responders never loop. The same email delivered twice is
    stored once. A reply to a closed ticket opens a follow-up ticket.

    Raises EmailParseError when `raw` is no email at all, and LoaderError (ParserCrashError)
    when parsing it crashed or outran the parser child's limits.
    """
    email = email_parse(raw)
    if email.dropped_headers:
        logger.warning(
            "inbound email %s for bot %s: header fields not read: %s",
            email.message_id,
            bot.pk,
            "; ".join(email.dropped_headers),
        )
    if email.automated:
        logger.info("inbound email %s for bot %s ignored: %s", email.message_id, bot.pk, email.automated)
        return EmailOutcome("ignored", reason=f"machine-sent ({email.automated})")
    if not email.from_address:
        return EmailOutcome("ignored", reason="no sender address")
    with transaction.atomic():
        # One email at a time per bot, so the same email delivered twice at once (a
        # webhook retry racing an IMAP poll) is still stored once.
        list(Bot.objects.select_for_update().filter(pk=bot.pk).values_list("pk", flat=True))
        duplicate = _message_with_external_id(bot, [email.message_id], role=Role.VISITOR)
        if duplicate is not None:
            return EmailOutcome("duplicate", duplicate.conversation.ticket, duplicate, "already received")
        ticket = _thread_of(bot, email)
        if ticket is None or ticket.status == TicketStatus.CLOSED:
            follow_up = ticket
            ticket = _ticket_new(
                bot=bot,
                channel=Channel.EMAIL,
                subject=email.subject or "(no subject)",
                email=email.from_address,
                name=email.from_name,
            )
            if follow_up is not None:
                _note(ticket.conversation, f"Follow-up to closed ticket #{follow_up.token}.")
            status = "follow_up" if follow_up is not None else "created"
        else:
            status = "reopened" if ticket.status in REOPENABLE else "threaded"
        message = _customer_message(ticket, email)
    if status in {"created", "follow_up"}:
        webhooks_emit_ticket(ticket=ticket, event="ticket.created")
    webhooks_emit_message(ticket=ticket, message=message)
    _after_customer_message(ticket, first=status in {"created", "follow_up"})
    return EmailOutcome(status, ticket, message)


PARSE_EMAIL = "bots.tickets.email_parsing:parse_email"


def email_parse(raw: bytes) -> InboundEmail:
    """`parse_email` in the parser child, under the limits uploads are parsed with
    (`NEO_PARSER_*`): mail is strangers' bytes up to NEO_EMAIL_MAX_BYTES, and the stdlib's
    parser has had slow paths and crashes. In this process when NEO_PARSER_ISOLATION is off."""
    options = {"max_attachment_bytes": settings.NEO_EMAIL_MAX_ATTACHMENT_BYTES}
    if not settings.NEO_PARSER_ISOLATION:
        return parse_email(raw, **options)
    try:
        email = run_isolated(PARSE_EMAIL, raw, limits=parser_limits(), **options)
    except ChildError as error:
        if error.kind == EmailParseError.__name__:
            raise EmailParseError(error.message) from None
        raise
    assert isinstance(email, InboundEmail)
    return email


def ticket_create(
    *, bot: Bot, subject: str, text: str, email: str, name: str = "", channel: str = Channel.API
) -> tuple[Ticket, Message]:
    """A ticket from the REST API or the widget's contact form."""
    if not text.strip():
        raise TicketRejected("The ticket needs a message.")
    with transaction.atomic():
        subject = subject.strip() or text.strip()[:80]
        ticket = _ticket_new(bot=bot, channel=channel, subject=subject, email=email, name=name)
        message = _store_customer_text(ticket, text, external_id="")
    webhooks_emit_ticket(ticket=ticket, event="ticket.created")
    webhooks_emit_message(ticket=ticket, message=message)
    _after_customer_message(ticket, first=True)
    return ticket, message


def _ticket_new(*, bot: Bot, channel: str, subject: str, email: str, name: str) -> Ticket:
    conversation = Conversation.objects.create(
        bot=bot,
        channel=channel,
        visitor_id=f"email:{email.lower()}"[:64],
        visitor_info={"email": email.lower(), **({"name": name} if name else {})},
    )
    return cast(
        Ticket,
        Ticket.objects.create(
            conversation=conversation, subject=subject[:300], requester_email=email.lower(), requester_name=name[:200]
        ),
    )


def _thread_of(bot: Bot, email: InboundEmail) -> Ticket | None:
    ids = [*email.in_reply_to, *reversed(email.references)]
    earlier = _message_with_external_id(bot, ids) if ids else None
    if earlier is not None:
        return cast("Ticket | None", Ticket.objects.filter(conversation_id=earlier.conversation_id).first())
    if email.token:
        return cast("Ticket | None", Ticket.objects.filter(conversation__bot=bot, token=email.token).first())
    return None


def _message_with_external_id(bot: Bot, ids: list[str], role: str | None = None) -> Message | None:
    found = Message.objects.filter(conversation__bot__organization_id=bot.organization_id, external_id__in=ids)
    if role is not None:
        found = found.filter(role=role)
    return cast("Message | None", found.select_related("conversation").order_by("-created_at").first())


def _customer_message(ticket: Ticket, email: InboundEmail) -> Message:
    text = email.new_text.strip() or email.text.strip() or "(empty message)"
    if email.skipped_attachments:
        text += "\n\n" + "\n".join(f"[{note}]" for note in email.skipped_attachments)
    message = _store_customer_text(ticket, text, external_id=email.message_id)
    for attachment in email.attachments:
        Attachment.objects.create(
            message=message,
            file=ContentFile(attachment.data, name=_stored_name(attachment.filename)),
            filename=attachment.filename,
            content_type=attachment.content_type,
            size_bytes=len(attachment.data),
        )
    return message


def _stored_name(filename: str) -> str:
    """The attachment's name on disk. The storage keeps only letters, digits, "-", "_"
    and "." and raises SuspiciousFileOperation for a name with none of them ("😀",
    "★★★"), which refused the whole email; `Attachment.filename` keeps the name as sent."""
    try:
        return cast(str, get_valid_filename(filename))
    except SuspiciousFileOperation:
        return "attachment"


def _store_customer_text(ticket: Ticket, text: str, *, external_id: str) -> Message:
    """Screened like a chat message: personal data redacted before it is stored."""
    from workers.moderation.pipeline import Policy, screen_input

    verdict = screen_input(text, Policy.from_bot(ticket.conversation.bot.moderation_policy))
    verdicts = [verdict.as_dict()] if verdict.findings else []
    message: Message = Message.objects.create(
        conversation=ticket.conversation,
        role=Role.VISITOR,
        text=verdict.text,
        external_id=external_id[:500],
        moderation=verdicts,
        moderation_action=strongest_action(verdicts),
    )
    Conversation.objects.filter(pk=ticket.conversation_id).update(last_activity_at=timezone.now())
    return message


def _after_customer_message(ticket: Ticket, *, first: bool) -> None:
    """A new ticket is triaged (and then maybe answered); a customer writing again
    goes to a person: the bot answers a ticket at most once."""

    if first:
        enqueue("workers.tasks.triage_ticket", ticket.pk)
        return
    Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.OPEN, updated_at=timezone.now())
    Conversation.objects.filter(pk=ticket.conversation_id).update(status=ConversationStatus.PENDING_AGENT)
    if ticket.status != TicketStatus.OPEN:
        webhooks_emit_ticket(ticket=ticket, event="ticket.updated")


def _note(conversation: Conversation, text: str) -> None:
    Message.objects.create(conversation=conversation, role=Role.SYSTEM, text=text)


def ticket_triage(*, ticket: Ticket) -> dict[str, Any]:
    """Category (learned from the organization's tickets an agent categorised), priority
    and SLA, language; then the automatic answer, when the bot answers tickets."""
    from workers.triage.language import detect_language
    from workers.triage.priority import decide_priority

    question = _first_customer_text(ticket)
    tier = str(ticket.conversation.visitor_info.get("tier", ""))
    priority = decide_priority(question, subject=ticket.subject, tier=tier)
    language, _ = detect_language(f"{ticket.subject}\n{question}")
    prediction = category_predict(ticket=ticket, text=f"{ticket.subject}\n{question}")
    triage = {
        "priority_reasons": priority.reasons,
        "sentiment": round(priority.sentiment, 3),
        "urgency": round(priority.urgency, 3),
        "category_alternatives": prediction.alternatives if prediction else [],
        "category": "none fits" if prediction and prediction.category is None else None,
    }
    changes: dict[str, Any] = {
        "priority": priority.priority,
        "language": language,
        "due_at": ticket.created_at + timedelta(hours=priority.due_hours),
        "triage": triage,
        "status": TicketStatus.OPEN,
    }
    if prediction is not None and prediction.category and ticket.category_source != "agent":
        changes.update(
            category=prediction.category, category_source="triage", category_confidence=prediction.confidence
        )
    Ticket.objects.filter(pk=ticket.pk).update(**changes, updated_at=timezone.now())
    webhooks_emit_ticket(ticket=ticket, event="ticket.updated")

    model = ticket.conversation.bot.answering_model  # its worker holds the bot's model
    enqueue_for_model("workers.tasks.summarize_ticket", ticket.pk, model=model)
    # A chat handed off to a person is not answered by the bot again.
    if ticket.conversation.bot.ticket_mode != TicketMode.OFF and ticket.conversation.channel != Channel.WIDGET:
        enqueue_for_model("workers.tasks.answer_ticket_task", ticket.pk, model=model)
    return changes


def ticket_answer(*, ticket: Ticket) -> dict[str, Any]:
    """Draft the bot's answer to a new ticket (retrieval and generation as in chat,
    screened by moderation) and send it when `auto_answer_decision` allows. Once per
    ticket: a redelivered task finds the decision recorded and does nothing."""
    from bots.chat.replies import reply_generate

    ticket.refresh_from_db()
    if ticket.auto_answer.get("message_id"):
        return cast("dict[str, Any]", ticket.auto_answer)
    bot = ticket.conversation.bot
    reply = Message.objects.create(
        conversation=ticket.conversation, role=Role.BOT, status=MessageStatus.PENDING, delivery=Delivery.DRAFT
    )
    Ticket.objects.filter(pk=ticket.pk).update(auto_answer={"message_id": reply.pk, "decision": "drafting"})
    reply_generate(message=reply)
    reply.refresh_from_db()
    send, reason = auto_answer_decision(bot=bot, reply=reply)
    decision = {"message_id": reply.pk, "decision": "draft", "reason": reason, "confidence": reply.confidence}
    if send:
        try:
            ticket_send_reply(ticket=ticket, reply=reply, automatic=True)
        except OSError as error:
            decision.update(decision="draft", reason=f"sending failed: {error}")
        else:
            decision["decision"] = "sent"
            Ticket.objects.filter(pk=ticket.pk).update(status=TicketStatus.PENDING)
    Ticket.objects.filter(pk=ticket.pk).update(auto_answer=decision, updated_at=timezone.now())
    if decision["decision"] == "sent":
        webhooks_emit_ticket(ticket=ticket, event="ticket.updated")
    return decision


def _first_customer_text(ticket: Ticket) -> str:
    first = ticket.conversation.messages.filter(role=Role.VISITOR).order_by("created_at", "pk").first()
    return first.text if first else ""


_category_models: dict[int, tuple[tuple[int, str], Any]] = {}


def category_predict(*, ticket: Ticket, text: str) -> Any:
    """The organization's category for `text`, learned from the tickets its agents
    categorised (None until there are two categories with two examples each). The
    model is rebuilt when those labels change, and kept per process."""
    from workers.moderation.vectors import embed_text, embed_texts
    from workers.triage.categories import CategoryModel

    organization_id = ticket.conversation.bot.organization_id
    labelled = Ticket.objects.filter(
        conversation__bot__organization_id=organization_id, category_source="agent"
    ).exclude(category="")
    fingerprint = (labelled.count(), str(labelled.order_by("-updated_at").values_list("updated_at", flat=True).first()))
    cached = _category_models.get(organization_id)
    if cached is None or cached[0] != fingerprint:
        tickets = labelled.select_related("conversation")
        rows = [(t.category, f"{t.subject}\n{_first_customer_text(t)}") for t in tickets]
        counts: dict[str, int] = {}
        for category, _ in rows:
            counts[category] = counts.get(category, 0) + 1
        usable = [(c, t) for c, t in rows if counts[c] >= 2]
        if len({c for c, _ in usable}) < 2:
            return None
        texts = [t for _, t in usable]
        model = CategoryModel().fit(embed_texts(texts), [c for c, _ in usable], texts=texts)
        _category_models[organization_id] = cached = (fingerprint, model)
    return cached[1].predict(embed_text(text), text=text)


def auto_answer_decision(*, bot: Bot, reply: Message) -> tuple[bool, str]:
    """Whether a drafted answer may go out without a person: the bot auto-sends, the
    answer is confident, every paragraph cites a passage, and moderation passed."""
    if bot.ticket_mode != TicketMode.AUTO:
        return False, "the bot drafts ticket answers for an agent"
    if reply.status != MessageStatus.DONE:
        return False, f"the answer is {reply.status}"
    if reply.confidence is None or reply.confidence < bot.answer_threshold:
        return False, f"confidence {reply.confidence or 0:.2f} is below the bot's threshold {bot.answer_threshold:.2f}"
    if reply.moderation_action not in {"", "redact"}:
        return False, f"moderation: {reply.moderation_action}"
    paragraphs = [p for p in reply.text.split("\n\n") if len(p.split()) >= 4]
    if not reply.citations or not paragraphs or not all(CITATION.search(p) for p in paragraphs):
        return False, "not every part of the answer cites a help article"
    return True, "confident, cited and screened"


def ticket_reply_email_body(*, bot: Bot, reply: Message, automatic: bool) -> str:
    lines = [reply.text.strip()]
    sources = [c for c in reply.citations if isinstance(c, dict)]
    if sources:
        lines.append("")
        lines += [f"[{c['number']}] {c.get('title', '')}" + (f" — {c['url']}" if c.get("url") else "") for c in sources]
    if automatic:
        lines += ["", "—", AUTOMATIC_NOTICE.format(bot=bot.name)]
    return "\n".join(lines)


def ticket_send_reply(*, ticket: Ticket, reply: Message, automatic: bool) -> None:
    """Email `reply` to the requester, threaded under the customer's last email, and
    record its Message-ID so the customer's answer threads back to this ticket."""
    from django.core.mail import EmailMessage
    from django.core.mail.message import make_msgid

    bot = ticket.conversation.bot
    sender = bot.support_email or settings.DEFAULT_FROM_EMAIL
    domain = sender.rsplit("@", 1)[-1].strip(">") or "neo-support.invalid"
    message_id = make_msgid(idstring=f"t{ticket.pk}", domain=domain)
    threaded = ticket.conversation.messages.exclude(external_id="").order_by("created_at", "pk")
    earlier = list(threaded.values_list("external_id", flat=True))
    headers = {"Message-ID": message_id, "X-Neo-Ticket": ticket.token}
    if earlier:
        headers["In-Reply-To"] = f"<{earlier[-1]}>"
        headers["References"] = " ".join(f"<{i}>" for i in earlier[-20:])
    if automatic:
        headers["Auto-Submitted"] = "auto-replied"  # other responders must not answer it
    subject = ticket.subject if ticket.subject.lower().startswith("re:") else f"Re: {ticket.subject}"
    mail = EmailMessage(
        subject=f"{subject} [#{ticket.token}]",
        body=ticket_reply_email_body(bot=bot, reply=reply, automatic=automatic),
        from_email=sender,
        to=[ticket.requester_email],
        headers=headers,
    )
    try:
        mail.send()
    except OSError:
        logger.exception("sending the reply to ticket %s failed", ticket.pk)
        Message.objects.filter(pk=reply.pk).update(delivery=Delivery.FAILED)
        raise
    Message.objects.filter(pk=reply.pk).update(delivery=Delivery.SENT, external_id=message_id.strip("<>"))
    webhooks_emit_message(ticket=ticket, message=reply)
