"""Bots and everything visitors and agents say to them."""

from __future__ import annotations

import secrets
from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from neo_support.choices import IntegerChoices, TextChoices
from neo_support.model_queues import model_not_served
from neo_support.models import Organization
from neo_support.tenancy import TenantModel
from retrieval.models import KnowledgeBase


def new_public_key() -> str:
    return f"pk_{secrets.token_urlsafe(18)}"


def default_generation() -> dict[str, float | int]:
    return {"temperature": 0.3, "top_p": 0.9, "max_new_tokens": 200, "repetition_penalty": 1.15}


def default_theme() -> dict[str, str]:
    return {"accent": "#2563eb", "position": "right", "title": "Ask us anything"}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_ticket_token() -> str:
    """Short, unambiguous, upper case: it goes in email subjects as "[#K7Q2MX9A]"."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class TicketMode(TextChoices):
    OFF = "off", "Off: agents answer every ticket"
    DRAFT = "draft", "Draft: the bot drafts, an agent sends"
    AUTO = "auto", "Auto-send when confident, else draft"


class AnswerMode(TextChoices):
    GENERATIVE = "generative", "Generative (written by the language model)"
    EXTRACTIVE = "extractive", "Extractive (quote the best passages)"


class Bot(TenantModel):
    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Persona and rules the bot follows.")
    knowledge_bases = models.ManyToManyField(KnowledgeBase, blank=True, related_name="bots")
    answer_mode = models.CharField(max_length=12, choices=AnswerMode.choices, default=AnswerMode.GENERATIVE)
    generation = models.JSONField(default=default_generation, blank=True)
    # Below `answer_threshold` the bot offers a human; below `handoff_threshold` it hands off.
    # 0.65: the lowest that held back 98 % or more of out-of-scope questions while answering
    # 96 % or more in scope, over three knowledge bases (evaluate_answers; docs/retrieval.md).
    answer_threshold = models.FloatField(default=0.65, validators=[MinValueValidator(0), MaxValueValidator(1)])
    handoff_threshold = models.FloatField(default=0.25, validators=[MinValueValidator(0), MaxValueValidator(1)])
    moderation_policy = models.JSONField(default=dict, blank=True)
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key, editable=False)
    allowed_origins = models.JSONField(default=list, blank=True)
    welcome_message = models.TextField(default="Hi! How can I help you today?", blank=True)
    starter_questions = models.JSONField(default=list, blank=True)
    theme = models.JSONField(default=default_theme, blank=True)
    ticket_mode = models.CharField(max_length=5, choices=TicketMode.choices, default=TicketMode.DRAFT)
    # The address tickets are answered from (DEFAULT_FROM_EMAIL when blank).
    support_email = models.EmailField(blank=True)
    # Signs inbound-email webhook calls (HMAC-SHA256 of the raw message).
    inbound_secret = models.CharField(max_length=64, default=new_secret, editable=False)
    # The base model writing this bot's answers, one of NEO_MODELS; blank: NEO_MODEL. Its
    # replies go to that model's generation queue (neo_support.model_queues).
    base_model = models.CharField(max_length=200, blank=True, default="")
    # The tuned adapter answering for this bot; null: the base model (workers/training).
    model_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(handoff_threshold__lte=models.F("answer_threshold")),
                name="bot_handoff_threshold_lte_answer_threshold",
            )
        ]

    def __str__(self) -> str:
        return cast(str, self.name)

    def clean(self) -> None:
        problem = base_model_problem(str(self.base_model))
        if problem:
            raise ValidationError({"base_model": problem})

    @property
    def answering_model(self) -> str:
        """The base model that answers: its choice while it is still served, else NEO_MODEL."""
        if self.base_model in settings.NEO_MODELS:
            return str(self.base_model)
        return str(settings.NEO_MODEL)


def base_model_problem(model: str) -> str | None:
    """Why a bot cannot choose base model `model` (None: it can): blank means NEO_MODEL,
    any other name must be one this deployment serves."""
    if not model:
        return None
    return model_not_served(model, default_model=settings.NEO_MODEL, extra_models=settings.NEO_MODELS)


class Channel(TextChoices):
    WIDGET = "widget", "Chat widget"
    EMAIL = "email", "Email"
    API = "api", "API"


class ConversationStatus(TextChoices):
    BOT = "bot", "With the bot"
    PENDING_AGENT = "pending_agent", "Waiting for an agent"
    AGENT = "agent", "With an agent"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


class Conversation(TenantModel):
    organization_path = "bot__organization"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WIDGET)
    visitor_id = models.CharField(max_length=64, db_index=True)
    # What the host page told the widget about the visitor (NeoSupport.identify): name, email, external_id.
    visitor_info = models.JSONField(default=dict, blank=True)
    # Started from the dashboard's test chat: real in every way, but left out of analytics by default.
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.BOT)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_activity_at"]
        indexes = [models.Index(fields=["bot", "status"])]

    def __str__(self) -> str:
        return f"Conversation {self.pk} with {self.visitor_id}"


class Role(TextChoices):
    VISITOR = "visitor", "Visitor"
    BOT = "bot", "Bot"
    AGENT = "agent", "Agent"
    SYSTEM = "system", "System"


class MessageStatus(TextChoices):
    PENDING = "pending", "Pending"
    STREAMING = "streaming", "Streaming"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked by moderation"


class Delivery(TextChoices):
    """How a ticket reply reaches the customer; blank for chat messages."""

    DRAFT = "draft", "Draft for an agent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Sending failed"


class Message(TenantModel):
    organization_path = "conversation__bot__organization"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.DONE)
    # The id the client gave its message, so a resent frame is not stored twice.
    client_id = models.CharField(max_length=64, null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    citations = models.JSONField(default=list, blank=True)
    retrieval_scores = models.JSONField(default=list, blank=True)
    moderation = models.JSONField(default=list, blank=True)
    # The strongest action in `moderation` (bots.moderation_log.findings.strongest_action), so the
    # moderation log finds flagged messages by index rather than by reading every verdict.
    moderation_action = models.CharField(max_length=10, blank=True, default="", db_index=True)
    # A person's review of the verdicts: {"false_positive": true, "by": user id, "at": iso time, "phrases": [...]}.
    moderation_review = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # Which model answered: "base" or the tuned version's label ("v3"); blank for people.
    model_version = models.CharField(max_length=40, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    # Email: the Message-ID (threading, and the same email delivered twice is stored once).
    external_id = models.CharField(max_length=500, blank=True, db_index=True)
    delivery = models.CharField(max_length=6, choices=Delivery.choices, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="message_unique_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:50]}"


class TicketStatus(TextChoices):
    NEW = "new", "New"
    OPEN = "open", "Open"
    PENDING = "pending", "Waiting on customer"
    SOLVED = "solved", "Solved"
    CLOSED = "closed", "Closed"


class Priority(TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Ticket(TenantModel):
    organization_path = "conversation__bot__organization"

    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="ticket")
    subject = models.CharField(max_length=300)
    requester_email = models.EmailField(blank=True)
    requester_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=TicketStatus.choices, default=TicketStatus.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    category = models.CharField(max_length=100, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    token = models.CharField(max_length=12, unique=True, default=new_ticket_token, editable=False)
    # "agent" when a person set the category (what triage learns from), "triage" when triage did.
    category_source = models.CharField(max_length=6, blank=True)
    category_confidence = models.FloatField(null=True, blank=True)
    language = models.CharField(max_length=8, blank=True)
    triage = models.JSONField(default=dict, blank=True)  # reasons, sentiment, urgency, alternatives
    auto_answer = models.JSONField(default=dict, blank=True)  # decision, reason, confidence, message id
    # For the agent: {"text", "mode": "generated" | "extractive", "model_version", "cited": [titles]}.
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "priority"])]

    def __str__(self) -> str:
        return cast(str, self.subject)


class Attachment(TenantModel):
    organization_path = "message__conversation__bot__organization"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/%Y/%m/")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return cast(str, self.filename)


class Rating(IntegerChoices):
    DOWN = -1, "Thumbs down"
    UP = 1, "Thumbs up"


class Feedback(TenantModel):
    organization_path = "message__conversation__bot__organization"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    rating = models.SmallIntegerField(choices=Rating.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_rating_display()} on message {self.message_id}"


class WebhookEvent(TextChoices):
    TICKET_CREATED = "ticket.created", "Ticket created"
    TICKET_UPDATED = "ticket.updated", "Ticket updated"
    MESSAGE_CREATED = "message.created", "Message created"


class WebhookEndpoint(TenantModel):
    """A URL of the organization's that is told about ticket events (bots/webhooks.py)."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Signs every delivery: X-Neo-Signature is HMAC-SHA256 of the body under this secret.
    secret = models.CharField(max_length=64, default=new_secret, editable=False)
    # Subscribed event names (WebhookEvent); empty means every event.
    events = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return cast(str, self.url)

    def subscribes_to(self, event: str) -> bool:
        return not self.events or event in self.events


class WebhookDeliveryStatus(TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(TenantModel):
    """One event for one endpoint, and how sending it went (attempts, the last answer)."""

    organization_path = "endpoint__organization"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=10, choices=WebhookDeliveryStatus.choices, default=WebhookDeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # When a pending delivery is next due; while an attempt runs, the end of its lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "status"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint_id} ({self.status})"


class ModelVersionStatus(TextChoices):
    QUEUED = "queued", "Queued"
    TRAINING = "training", "Training"
    EVALUATING = "evaluating", "Evaluating"
    READY = "ready", "Ready to deploy"
    REJECTED = "rejected", "Not deployable (worse than the base)"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ModelVersion(TenantModel):
    """A LoRA adapter tuned on the bot's own history: how it was trained, how it compares
    with the base model, and where its files are (under MEDIA_ROOT/adapters/)."""

    organization_path = "bot__organization"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ModelVersionStatus.choices, default=ModelVersionStatus.QUEUED)
    base_model = models.CharField(max_length=300)
    config = models.JSONField(default=dict, blank=True)  # epochs, rank, learning_rate, …
    # {"step", "total_steps", "loss", "eta_seconds"} while training.
    progress = models.JSONField(default=dict, blank=True)
    examples = models.JSONField(default=dict, blank=True)  # counts per split and source
    # {"base": {...}, "tuned": {...}}: perplexity, groundedness, moderation_pass, overlap.
    metrics = models.JSONField(default=dict, blank=True)
    # {"device", "seconds", "tokens"} of the training run.
    compute = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["bot", "number"], name="model_version_unique_number")]

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def adapter_dir(self) -> str:
        """Relative to MEDIA_ROOT."""
        return f"adapters/bot-{self.bot_id}/v{self.number}"

    def __str__(self) -> str:
        return f"{self.bot} {self.label}"


# Privacy (bots/privacy): retention per organization, and erasures of a person's data.

# The longest a retention setting may be: a typo of a few extra digits is refused.
MAX_RETENTION_DAYS = 36500


class RetentionPolicy(TenantModel):
    """How many days each kind of record is kept; null: forever (the default)."""

    organization_path = "organization"

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="retention_policy")
    conversations_days = models.PositiveIntegerField(null=True, blank=True)
    tickets_days = models.PositiveIntegerField(null=True, blank=True)
    attachments_days = models.PositiveIntegerField(null=True, blank=True)
    moderation_days = models.PositiveIntegerField(null=True, blank=True)
    audit_log_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    (models.Q(conversations_days__isnull=True) | models.Q(conversations_days__gte=1))
                    & (models.Q(tickets_days__isnull=True) | models.Q(tickets_days__gte=1))
                    & (models.Q(attachments_days__isnull=True) | models.Q(attachments_days__gte=1))
                    & (models.Q(moderation_days__isnull=True) | models.Q(moderation_days__gte=1))
                    & (models.Q(audit_log_days__isnull=True) | models.Q(audit_log_days__gte=1))
                ),
                name="retention_days_at_least_one",
            )
        ]

    def __str__(self) -> str:
        return f"Retention of {self.organization}"


class RetentionRun(TenantModel):
    """One pass of the retention task over an organization: what it deleted, per kind."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="retention_runs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deleted = models.JSONField(default=dict, blank=True)  # kind -> rows deleted (or cleared)
    # Files whose rows are deleted, saved in the same transaction: deleted next, and by the
    # next run if this one's worker was killed first.
    pending_files = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Retention run {self.pk} of {self.organization}"


class ExpiredDailyCount(TenantModel):
    """Analytics' per-day counts (bots.analytics.selectors.DAILY_FIELDS) of conversations,
    messages and feedback that retention or an erasure deleted: numbers only, no text, so
    the charts of past days do not change when the rows go."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(Bot, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    is_test = models.BooleanField(default=False)
    counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["day", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "bot", "day", "is_test"], name="expired_daily_count_unique")
        ]

    def __str__(self) -> str:
        return f"Counts of {self.day} (bot {self.bot_id})"


class ErasureStatus(TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PersonErasure(TenantModel):
    """Erasing everything about one person (bots.privacy.erasure). The person is kept only
    as a salted SHA-256 of what identified them and a masked hint, never in clear; `plan`
    (ids and file paths, durable across a killed worker) is emptied when it is done."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="erasures")
    subject_hash = models.CharField(max_length=64)
    subject_hint = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=ErasureStatus.choices, default=ErasureStatus.QUEUED)
    # The steps done, in order (bots.privacy.erasure.STEPS), and where the current one is.
    steps_done = models.JSONField(default=list, blank=True)
    plan = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)  # table or kind -> rows (or files) erased
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Tuned versions whose training data held this person's messages: flagged on the model page.
    model_versions = models.ManyToManyField(ModelVersion, blank=True, related_name="erasures")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two erasures of the same person at once are one: the second finds the first.
            models.UniqueConstraint(
                fields=["organization", "subject_hash"],
                condition=models.Q(status__in=["queued", "running"]),
                name="person_erasure_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"Erasure {self.pk} ({self.subject_hint}, {self.status})"


class ModerationExample(TenantModel):
    """A text an owner marked "not a problem" for one classifier filter: the screening
    allows that filter's findings on texts close to it, in this organization only
    (workers.moderation.taught). Deleted with its message, so retention and erasure
    take the taught text with them."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="moderation_examples")
    filter = models.CharField(max_length=20)
    text = models.TextField()
    # float32 unit vector as bytes, from the embedding model the filters use.
    embedding = models.BinaryField(editable=False, default=bytes)
    score = models.FloatField(null=True, blank=True)  # the classifier's probability when it flagged
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="moderation_examples")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "filter", "text"], name="moderation_example_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.filter}: {self.text[:50]}"
