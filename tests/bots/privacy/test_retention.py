"""Retention: days per kind, zero refused, the pass deletes expired rows and files and
leaves recent ones, and analytics keeps the per-day counts of what went."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from bots.analytics.selectors import AnalyticsFilter, analytics_daily
from bots.models import Attachment, Conversation, Message, RetentionRun
from bots.privacy.retention import RetentionRefused, retention_apply, retention_policy_update
from bots.privacy.tasks import apply_retention
from tests.factories import AttachmentFactory, BotFactory, MembershipFactory, MessageFactory, TicketFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def aged(conversation: Conversation, days: int) -> Conversation:
    then = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk).update(created_at=then, last_activity_at=then)
    Message.objects.filter(conversation=conversation).update(created_at=then)
    Attachment.objects.filter(message__conversation=conversation).update(created_at=then)
    conversation.refresh_from_db()
    return conversation


def chat_with_file(bot, *, days: int) -> tuple[Conversation, Path]:
    conversation = Conversation.objects.create(bot=bot, visitor_id=f"v-{days}")
    message = MessageFactory(conversation=conversation, text=f"asked {days} days ago")
    MessageFactory(conversation=conversation, role="bot", text="answered", status="done")
    attachment = AttachmentFactory(message=message)
    return aged(conversation, days), Path(settings.MEDIA_ROOT) / attachment.file.name


@pytest.mark.parametrize("days", [0, -3, "0", "soon", 10**6, True])
def test_retention_of_zero_days_or_nonsense_is_refused(days) -> None:
    bot = BotFactory()
    with pytest.raises(RetentionRefused):
        retention_policy_update(organization=bot.organization, days={"conversations": days})
    retention_policy_update(organization=bot.organization, days={"conversations": 30, "tickets": "forever"})
    with pytest.raises(RetentionRefused):
        retention_policy_update(organization=bot.organization, days={"tickets": 5, "conversations": days})
    policy = bot.organization.retention_policy
    policy.refresh_from_db()
    assert (policy.conversations_days, policy.tickets_days) == (30, None)  # nothing half saved


def test_the_pass_deletes_expired_conversations_and_files_and_keeps_recent_ones() -> None:
    bot = BotFactory()
    old, old_file = chat_with_file(bot, days=40)
    recent, recent_file = chat_with_file(bot, days=5)
    assert old_file.is_file() and recent_file.is_file()
    old_day = old.created_at.date()
    before = analytics_daily(AnalyticsFilter(bot.organization, old_day, old_day))[0]
    retention_policy_update(organization=bot.organization, days={"conversations": 30})
    run = retention_apply(organization=bot.organization)
    assert run.deleted["conversations"] == 1 and run.finished_at is not None
    assert not Conversation.objects.filter(pk=old.pk).exists() and not old_file.exists()
    assert Conversation.objects.filter(pk=recent.pk).exists() and recent_file.is_file()
    after = analytics_daily(AnalyticsFilter(bot.organization, old_day, old_day))[0]
    assert before["conversations"] == after["conversations"] == 1
    assert before["visitor_messages"] == after["visitor_messages"] == 1
    assert before["bot_answers"] == after["bot_answers"] == 1


def test_tickets_attachments_and_moderation_records_expire_on_their_own_clocks() -> None:
    bot = BotFactory()
    ticket = TicketFactory(conversation=Conversation.objects.create(bot=bot, channel="email", visitor_id="e"))
    type(ticket).objects.filter(pk=ticket.pk).update(updated_at=timezone.now() - timedelta(days=100))
    kept, kept_file = chat_with_file(bot, days=20)
    flagged = MessageFactory(conversation=kept, moderation=[{"findings": ["card number"]}], moderation_action="redact")
    Message.objects.filter(pk=flagged.pk).update(created_at=timezone.now() - timedelta(days=20))
    retention_policy_update(
        organization=bot.organization, days={"tickets": 90, "attachments": 10, "moderation": 10, "conversations": 365}
    )
    run = retention_apply(organization=bot.organization)
    assert run.deleted == {"conversations": 0, "tickets": 1, "attachments": 1, "moderation": 1}
    assert not Conversation.objects.filter(pk=ticket.conversation_id).exists()
    assert Conversation.objects.filter(pk=kept.pk).exists() and not kept_file.exists()
    flagged.refresh_from_db()
    assert flagged.moderation == [] and flagged.moderation_action == "redact"


def test_an_organization_keeping_everything_forever_loses_nothing() -> None:
    bot = BotFactory()
    old, old_file = chat_with_file(bot, days=4000)
    retention_policy_update(organization=bot.organization, days={"conversations": None})
    assert apply_retention() == {}
    assert Conversation.objects.filter(pk=old.pk).exists() and old_file.is_file()


def test_the_beat_task_applies_each_policy_and_records_a_run() -> None:
    bot = BotFactory()
    chat_with_file(bot, days=3)
    retention_policy_update(organization=bot.organization, days={"conversations": 1})
    assert apply_retention() == {bot.organization.pk: {"conversations": 1}}
    assert RetentionRun.objects.get(organization=bot.organization).deleted == {"conversations": 1}
    assert "apply-retention" in settings.CELERY_BEAT_SCHEDULE


def test_the_owner_sets_retention_on_the_page_and_zero_is_refused_with_a_message(client) -> None:
    bot = BotFactory()
    client.force_login(MembershipFactory(organization=bot.organization, role="owner").user)
    response = client.post("/dashboard/privacy/retention/", {"conversations": "0", "tickets": "30"})
    assert response.status_code == 400 and b"keep at least 1 day" in response.content
    response = client.post("/dashboard/privacy/retention/", {"conversations": "90", "tickets": "forever"})
    assert response.status_code == 302
    policy = bot.organization.retention_policy
    assert (policy.conversations_days, policy.tickets_days) == (90, None)


def test_the_audit_log_expires_under_its_own_days_and_keeps_recent_entries() -> None:
    from neo_support.models import AuditEntry
    from tests.factories import AuditEntryFactory

    bot = BotFactory()
    month_ago = timezone.now() - timedelta(days=30)
    old = AuditEntryFactory(organization=bot.organization, created_at=month_ago)
    recent = AuditEntryFactory(organization=bot.organization)
    elsewhere = AuditEntryFactory(created_at=month_ago)  # another organization's policy
    retention_apply(organization=bot.organization)
    assert AuditEntry.objects.filter(pk=old.pk).exists()  # forever by default
    retention_policy_update(organization=bot.organization, days={"audit_log": 7})
    run = retention_apply(organization=bot.organization)
    assert run.deleted["audit_log"] >= 1
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(pk=recent.pk).exists() and AuditEntry.objects.filter(pk=elsewhere.pk).exists()


def test_files_a_killed_pass_left_behind_are_deleted_by_the_next() -> None:
    bot = BotFactory()
    conversation, path = chat_with_file(bot, days=1)
    name = Attachment.objects.get(message__conversation=conversation).file.name
    Conversation.objects.filter(pk=conversation.pk).delete()  # the rows went, then the worker died
    RetentionRun.objects.create(organization=bot.organization, pending_files=[name])
    assert path.is_file()
    retention_apply(organization=bot.organization)
    assert not path.exists() and not RetentionRun.objects.exclude(pending_files=[]).exists()


def test_the_command_runs_the_pass_where_no_beat_runs() -> None:
    from io import StringIO

    from django.core.management import call_command

    bot = BotFactory()
    old, old_file = chat_with_file(bot, days=10)
    out = StringIO()
    call_command("apply_retention", stdout=out)
    assert "No organization limits" in out.getvalue() and old_file.is_file()
    retention_policy_update(organization=bot.organization, days={"conversations": 7})
    out = StringIO()
    call_command("apply_retention", stdout=out)
    assert f"organization {bot.organization.pk}: conversations 1" in out.getvalue()
    assert not Conversation.objects.filter(pk=old.pk).exists() and not old_file.exists()


def test_expired_conversations_leave_the_stored_training_datasets() -> None:
    from bots.privacy.selectors import dataset_path
    from tests.bots.privacy.person_data import BOT_TEXT, seed_person

    seeded = seed_person(BotFactory())
    aged(seeded.chat, 10)
    retention_policy_update(organization=seeded.bot.organization, days={"conversations": 7})
    run = retention_apply(organization=seeded.bot.organization)
    assert run.deleted["conversations"] == 1 and run.deleted["training_examples"] >= 1
    dataset = dataset_path(seeded.version).read_text()
    assert BOT_TEXT not in dataset and "Gift cards never expire" in dataset
