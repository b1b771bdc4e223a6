"""REST endpoints for bots: list, create, read, change, delete."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers, viewsets

from bots.chat.origins import normalise_origin
from bots.models import AnswerMode, Bot, TicketMode, base_model_problem
from bots.services import bot_create, bot_delete, bot_update
from neo_support.api_auth import acting_organization
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

    class Meta:
        model = Bot
        fields = [
            "id", "name", "instructions", "knowledge_bases", "answer_mode", "generation", "answer_threshold",
            "handoff_threshold", "moderation_policy", "public_key", "allowed_origins", "welcome_message",
            "starter_questions", "theme", "ticket_mode", "support_email", "base_model", "answering_model",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["public_key", "created_at", "updated_at"]

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
        return Bot.objects.for_organization(organization).prefetch_related("knowledge_bases").order_by("name", "pk")

    def perform_destroy(self, instance: Bot) -> None:
        bot_delete(bot=instance)
