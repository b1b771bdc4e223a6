"""REST endpoint for the moderation log's summary: the share of traffic each filter
flagged per day, and the log grouped by filter and reason."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import Bot
from bots.moderation_log.selectors import (
    SHARE_DAYS,
    moderation_daily_shares,
    moderation_log_groups,
    moderation_log_list,
)
from neo_support.api_auth import acting_organization
from neo_support.permissions import Area

MAX_SHARE_DAYS = 90


class ModerationSummaryIn(serializers.Serializer):
    bot = serializers.IntegerField(required=False, min_value=1, help_text="One bot's messages; all bots when left out.")
    days = serializers.IntegerField(
        default=SHARE_DAYS, min_value=1, max_value=MAX_SHARE_DAYS, help_text="Days counted, ending today."
    )

    def validate_bot(self, value: int) -> Bot:
        bot = Bot.objects.for_organization(acting_organization(self.context["request"])).filter(pk=value).first()
        if bot is None:
            raise serializers.ValidationError("No bot with this id in your organization.")
        return bot  # type: ignore[no-any-return]


class ModerationSummaryApi(APIView):
    """`daily`: per day, the messages screened and, per filter, those it flagged, withheld
    or blocked (`flagged`), blocked (`blocked`) and allowed because an owner had marked a
    message like them not a problem (`taught_allowed`), with the shares of the screened.
    `groups`: the log's messages by filter and reason (count, last seen, how many were
    marked not a problem), over its newest 5,000 (`groups_truncated` says there were more)."""

    api_area = Area.MODERATION

    @extend_schema(parameters=[ModerationSummaryIn], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        incoming = ModerationSummaryIn(data=request.query_params, context={"request": request})
        incoming.is_valid(raise_exception=True)
        organization = acting_organization(request)
        bot: Bot | None = incoming.validated_data.get("bot")
        bot_id = bot.pk if bot is not None else None
        groups, truncated = moderation_log_groups(
            messages=moderation_log_list(organization=organization, bot_id=bot_id)
        )
        summary: dict[str, Any] = {
            "daily": moderation_daily_shares(
                organization=organization, bot_id=bot_id, days=incoming.validated_data["days"]
            ),
            "groups": [
                {
                    "filter": group.filter,
                    "reason": group.reason,
                    "messages": group.messages,
                    "not_a_problem": group.not_a_problem,
                    "last_seen": group.last_seen.isoformat() if group.last_seen else None,
                }
                for group in groups
            ],
            "groups_truncated": truncated,
        }
        return Response(summary)
