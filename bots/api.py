"""REST endpoints for bots (list, create, read, change, delete) and the base models a bot
may choose from."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.chat.origins import normalise_origin
from bots.models import AnswerMode, Bot, TicketMode, base_model_problem
from bots.selectors import bot_tuned_version_unused
from bots.services import bot_create, bot_delete, bot_update
from neo_support.api import ApiPages
from neo_support.api_auth import acting_organization
from neo_support.api_schema import paginated
from neo_support.health import check_models
from neo_support.permissions import Area
from retrieval.models import KnowledgeBase

MAX_ORIGINS = 50
MAX_STARTERS = 10


class GenerationIn(serializers.Serializer):
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, default=0.3)
    top_p = serializers.FloatField(min_value=0.05, max_value=1.0, default=0.9)
    max_new_tokens = serializers.IntegerField(min_value=1, max_value=1024, default=200)
    repetition_penalty = serializers.FloatField(min_value=1.0, max_value=2.0, default=1.15)


class ThemeIn(serializers.Serializer):
    accent = serializers.RegexField(r"^#[0-9a-fA-F]{6}$", default="#2563eb")
    position = serializers.ChoiceField(choices=["left", "right"], default="right")
    title = serializers.CharField(max_length=80, default="Ask us anything", allow_blank=True)


class ModerationPolicyIn(serializers.Serializer):
    """The filters' settings (docs/moderation.md); keys left out keep their defaults."""

    blocklist = serializers.ListField(child=serializers.CharField(max_length=100), max_length=500, required=False)
    allowlist = serializers.ListField(child=serializers.CharField(max_length=500), max_length=500, required=False)
    blocklist_action = serializers.ChoiceField(choices=["block", "flag"], required=False)
    pii = serializers.ChoiceField(choices=["redact", "flag", "off"], required=False)
    toxicity = serializers.ChoiceField(choices=["block", "flag", "off"], required=False)
    injection = serializers.ChoiceField(choices=["block", "flag", "off"], required=False)
    grounding = serializers.ChoiceField(choices=["on", "off"], required=False)
    safe_reply = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class OrganizationKnowledgeBases(serializers.PrimaryKeyRelatedField):
    """Knowledge base ids of the acting organization only: another's id is "does not exist"."""

    def get_queryset(self) -> QuerySet[KnowledgeBase]:
        return KnowledgeBase.objects.for_organization(acting_organization(self.context["request"]))


class BotSerializer(serializers.ModelSerializer):
    knowledge_bases = OrganizationKnowledgeBases(many=True, required=False)
    generation = GenerationIn(required=False)
    theme = ThemeIn(required=False)
    moderation_policy = ModerationPolicyIn(required=False)
    allowed_origins = serializers.ListField(
        child=serializers.CharField(max_length=300), max_length=MAX_ORIGINS, required=False
    )
    starter_questions = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=MAX_STARTERS, required=False
    )
    answer_mode = serializers.ChoiceField(choices=AnswerMode.choices, required=False)
    ticket_mode = serializers.ChoiceField(choices=TicketMode.choices, required=False)
    answer_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    handoff_threshold = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    base_model = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="The base model that writes this bot's answers: blank for the deployment's default model "
        "(NEO_MODEL), or one of the models it serves (NEO_MODEL and NEO_MODELS; an operator lists them with "
        "`manage.py generation_queues`). Any other name is refused with the served models listed. A deployed "
        "tuned version answers only on the model it was tuned on; on another, the base model answers.",
    )
    answering_model = serializers.CharField(
        read_only=True,
        help_text="The base model answering now: `base_model` while this deployment serves it, else NEO_MODEL.",
    )
    warnings = serializers.SerializerMethodField(
        help_text="What in this bot's settings does not take effect now, in words; empty when all does. "
        "Today: a deployed tuned version trained on another base model than `answering_model`, whose adapter "
        "replies skip until it is re-tuned or the base model is switched back. A change that causes it is saved "
        "all the same."
    )

    class Meta:
        model = Bot
        fields = [
            "id", "name", "instructions", "knowledge_bases", "answer_mode", "generation", "answer_threshold",
            "handoff_threshold", "moderation_policy", "public_key", "allowed_origins", "welcome_message",
            "starter_questions", "theme", "ticket_mode", "support_email", "base_model", "answering_model",
            "warnings", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["public_key", "created_at", "updated_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, bot: Bot) -> list[str]:
        unused = bot_tuned_version_unused(bot=bot)
        return [unused] if unused else []

    def validate_base_model(self, value: str) -> str:
        problem = base_model_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_allowed_origins(self, value: list[str]) -> list[str]:
        origins = []
        for entry in value:
            wildcard = "://*." in entry
            checked = normalise_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
            if checked is None:
                raise serializers.ValidationError(f"{entry!r} is not a site origin like https://www.example.com.")
            origins.append(checked.replace("://", "://*.", 1) if wildcard else checked)
        return list(dict.fromkeys(origins))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.instance
        defaults = current if current is not None else Bot()
        answer = attrs.get("answer_threshold", defaults.answer_threshold)
        handoff = attrs.get("handoff_threshold", defaults.handoff_threshold)
        if handoff > answer:
            raise serializers.ValidationError(
                {"handoff_threshold": "The handoff threshold must not be above the answer threshold."}
            )
        if "moderation_policy" in attrs and current is not None:
            # Keys this API does not know (set elsewhere) are kept.
            attrs["moderation_policy"] = {**current.moderation_policy, **attrs["moderation_policy"]}
        if "generation" in attrs and current is not None:
            attrs["generation"] = {**current.generation, **attrs["generation"]}
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Bot:
        knowledge_bases = validated_data.pop("knowledge_bases", [])
        organization = acting_organization(self.context["request"])
        name = validated_data.pop("name")
        return bot_create(organization=organization, name=name, knowledge_bases=knowledge_bases, **validated_data)

    def update(self, instance: Bot, validated_data: dict[str, Any]) -> Bot:
        knowledge_bases = validated_data.pop("knowledge_bases", None)
        return bot_update(bot=instance, knowledge_bases=knowledge_bases, **validated_data)


class BotViewSet(viewsets.ModelViewSet):
    """The organization's bots. `public_key` goes in the widget's snippet."""

    api_area = Area.BOTS
    serializer_class = BotSerializer
    filterset_fields = ["answer_mode", "ticket_mode"]

    def get_queryset(self) -> QuerySet[Bot]:
        if getattr(self, "swagger_fake_view", False):
            return Bot.objects.none()
        organization = acting_organization(self.request)
        bots = Bot.objects.for_organization(organization).select_related("model_version")
        return bots.prefetch_related("knowledge_bases").order_by("name", "pk")

    def perform_destroy(self, instance: Bot) -> None:
        bot_delete(bot=instance)


MODEL_STATES = {
    "loaded": "loaded: in memory, answering",
    "not_loaded": "not loaded yet: the weights are here and load with the first reply",
    "unavailable": "unavailable: a failed load or missing weights; `message` says what to do",
    "unknown": "unknown: no live worker consumes its queue, or none has reported it yet",
}


class ServedModelOut(serializers.Serializer):
    name = serializers.CharField(help_text="What a bot's `base_model` names to choose it.")
    default = serializers.BooleanField(help_text="Whether this is NEO_MODEL, which answers when `base_model` is blank.")
    queue = serializers.CharField(help_text="The Celery queue whose generation workers serve it.")
    state = serializers.ChoiceField(
        choices=list(MODEL_STATES.items()), help_text="As /healthz reports it: " + "; ".join(MODEL_STATES.values())
    )
    message = serializers.CharField(allow_blank=True, help_text="Why it is unavailable or unknown; blank otherwise.")
    device = serializers.CharField(allow_null=True, help_text="Where it runs once loaded (`cuda:0`, `cpu`).")
    dtype = serializers.CharField(allow_null=True, help_text="Its weights' type once loaded (`bfloat16`, ...).")
    live_workers = serializers.IntegerField(
        allow_null=True,
        help_text="Live generation workers on its queue; null when tasks run in the web process (the embedded "
        "default).",
    )


def served_model_out(model: dict[str, Any], *, in_process: bool) -> dict[str, Any]:
    """One model of the /healthz `models` check, every field of ServedModelOut filled."""
    return {
        "name": model["name"],
        "default": model["default"],
        "queue": model["queue"],
        "state": model.get("state") if model.get("state") in MODEL_STATES else "unknown",
        "message": model.get("message", ""),
        "device": model.get("device"),
        "dtype": model.get("dtype"),
        "live_workers": None if in_process else len(model.get("workers", [])),
    }


class ServedModelListApi(APIView):
    """Every base model this deployment serves (NEO_MODEL first, then NEO_MODELS), the same
    for every organization, with its state as /healthz reports it. Needs `bots:read`: it is
    what a bot's `base_model` chooses from."""

    api_area = Area.BOTS

    @extend_schema(operation_id="models_list", responses=paginated(ServedModelOut))
    def get(self, request: Request) -> Response:
        report = check_models()
        in_process = report["mode"] == "in-process"
        models = [served_model_out(model, in_process=in_process) for model in report["models"]]
        pages = ApiPages()
        page = pages.paginate_queryset(models, request, view=self)
        return pages.get_paginated_response(ServedModelOut(page, many=True).data)
