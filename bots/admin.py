from __future__ import annotations

from django.contrib import admin

from bots.models import (
    Attachment,
    Bot,
    Conversation,
    ExpiredDailyCount,
    Feedback,
    Message,
    ModelVersion,
    ModerationExample,
    PersonErasure,
    RetentionPolicy,
    RetentionRun,
    Ticket,
    WebhookDelivery,
    WebhookEndpoint,
)
from neo_support.admin import ReadOnlyAdmin


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "answer_mode", "public_key", "updated_at"]
    list_filter = ["organization", "answer_mode"]
    search_fields = ["name", "public_key"]
    filter_horizontal = ["knowledge_bases"]
    readonly_fields = ["public_key"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["role", "status", "text", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "bot", "channel", "visitor_id", "status", "assignee", "last_activity_at"]
    list_filter = ["status", "channel", "bot__organization"]
    search_fields = ["visitor_id"]
    raw_id_fields = ["assignee"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "role", "status", "confidence", "created_at"]
    list_filter = ["role", "status"]
    search_fields = ["text"]
    raw_id_fields = ["conversation", "author"]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ["subject", "status", "priority", "category", "assignee", "due_at", "created_at"]
    list_filter = ["status", "priority", "category"]
    search_fields = ["subject", "requester_email"]
    raw_id_fields = ["conversation", "assignee"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["filename", "content_type", "size_bytes", "message", "created_at"]
    search_fields = ["filename"]
    raw_id_fields = ["message"]


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "rating", "created_at"]
    list_filter = ["rating"]
    raw_id_fields = ["message"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "organization", "active", "created_at"]
    list_filter = ["active", "organization"]
    search_fields = ["url"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "endpoint", "event", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event"]
    raw_id_fields = ["endpoint"]
    readonly_fields = ["delivered_at", "created_at"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["bot", "number", "status", "base_model", "created_at", "finished_at"]
    list_filter = ["status"]
    raw_id_fields = ["bot", "created_by"]
    readonly_fields = ["progress", "metrics", "compute", "examples", "created_at", "finished_at"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["organization", "conversations_days", "tickets_days", "attachments_days", "updated_at"]
    raw_id_fields = ["organization"]


class _RecordAdmin(ReadOnlyAdmin):
    """Records the privacy work writes (retention passes, erasures, kept counts); an
    erasure is started from the privacy page, never here."""

    deletable = True


@admin.register(RetentionRun)
class RetentionRunAdmin(_RecordAdmin):
    list_display = ["organization", "started_at", "finished_at", "deleted"]


@admin.register(ExpiredDailyCount)
class ExpiredDailyCountAdmin(_RecordAdmin):
    list_display = ["organization", "bot", "day", "is_test", "counts"]


@admin.register(PersonErasure)
class PersonErasureAdmin(_RecordAdmin):
    # The hint is masked (j***@e***.com); the person's identifiers are never stored.
    list_display = ["organization", "subject_hint", "status", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(ModerationExample)
class ModerationExampleAdmin(ReadOnlyAdmin):
    """What owners taught the filters; taught and removed from the moderation log."""

    deletable = True
    list_display = ["organization", "filter", "text", "created_at"]
    list_filter = ["filter"]
