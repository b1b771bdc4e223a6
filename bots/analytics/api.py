"""REST endpoint for analytics: the dashboard's figures as JSON."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.analytics.selectors import DEFAULT_DAYS, FIRST_DAY, LAST_DAY, MAX_DAYS, AnalyticsFilter, analytics_summary
from bots.models import Bot
from neo_support.api_auth import acting_organization
from neo_support.permissions import Area


class AnalyticsIn(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day counted (default: 29 days before until).")
    until = serializers.DateField(required=False, help_text="Last day counted, inclusive (default: today).")
    bot = serializers.IntegerField(required=False, min_value=1, help_text="One bot's figures; all bots when left out.")
    clusters = serializers.BooleanField(
        default=False, help_text="Also cluster the unanswered questions by topic (embeds up to 500 questions)."
    )
    include_test = serializers.BooleanField(
        default=False,
        help_text="Also count conversations from the dashboard's test chat, with their messages and feedback "
        "(left out by default).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        until = attrs.get("until") or timezone.localdate()
        since = attrs.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since < FIRST_DAY or until > LAST_DAY:
            raise serializers.ValidationError({"since": f"Choose dates from {FIRST_DAY} to {LAST_DAY}."})
        if since > until:
            raise serializers.ValidationError({"until": "The end date is before the start date."})
        if (until - since).days >= MAX_DAYS:
            raise serializers.ValidationError({"since": f"Choose at most {MAX_DAYS} days."})
        organization = acting_organization(self.context["request"])
        bot = None
        if attrs.get("bot") is not None:
            bot = Bot.objects.for_organization(organization).filter(pk=attrs["bot"]).first()
            if bot is None:
                raise serializers.ValidationError({"bot": "No bot with this id in your organization."})
        attrs["filter"] = AnalyticsFilter(
            organization=organization, since=since, until=until, bot=bot, include_test=attrs["include_test"]
        )
        return attrs


class AnalyticsApi(APIView):
    """Conversations, deflection and handoff rates, thumbs and CSAT, latency p50/p95,
    moderation actions by filter, top questions and (on request) unanswered-question
    clusters; `daily` holds the per-day series."""

    api_area = Area.ANALYTICS

    @extend_schema(parameters=[AnalyticsIn], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        incoming = AnalyticsIn(data=request.query_params, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        return Response(analytics_summary(data["filter"], with_clusters=data["clusters"]))
