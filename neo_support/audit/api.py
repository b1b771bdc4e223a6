"""GET /api/audit/: the organization's audit log, newest first, with the page's filters.
Read-only (there is no write to an audit log); an API key needs the `audit:read` scope."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from neo_support.api import ApiPages
from neo_support.api_auth import acting_organization
from neo_support.api_schema import paginated
from neo_support.audit.actions import ACTIONS, TARGET_KINDS
from neo_support.audit.selectors import AuditFilter, audit_entries
from neo_support.models import AuditEntry
from neo_support.permissions import Area


class AuditEntryOut(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    target = serializers.CharField(source="target_label")

    class Meta:
        model = AuditEntry
        fields = [
            "id", "created_at", "actor_kind", "actor_id", "actor", "action", "target_kind", "target_id", "target",
            "before", "after", "ip",
        ]  # fmt: skip


class AuditQueryIn(serializers.Serializer):
    actor = serializers.CharField(required=False, allow_blank=True, max_length=200)
    action = serializers.ChoiceField(required=False, allow_blank=True, choices=list(ACTIONS))
    target_kind = serializers.ChoiceField(required=False, allow_blank=True, choices=list(TARGET_KINDS))
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "The last day comes before the first."})
        return attrs


class AuditListApi(APIView):
    api_area = Area.AUDIT

    @extend_schema(
        operation_id="audit_list",
        parameters=[
            OpenApiParameter("actor", str, description="Part of the actor's name (user, API key or 'system')."),
            OpenApiParameter("action", str, enum=list(ACTIONS)),
            OpenApiParameter("target_kind", str, enum=list(TARGET_KINDS)),
            OpenApiParameter("since", str, description="First day (YYYY-MM-DD), inclusive."),
            OpenApiParameter("until", str, description="Last day (YYYY-MM-DD), inclusive."),
        ],
        responses=paginated(AuditEntryOut),
    )
    def get(self, request: Request) -> Response:
        """Who did what in the organization, newest first."""
        incoming = AuditQueryIn(data=request.query_params)
        incoming.is_valid(raise_exception=True)
        chosen = AuditFilter(
            actor=incoming.validated_data.get("actor", "").strip(),
            action=incoming.validated_data.get("action", ""),
            target_kind=incoming.validated_data.get("target_kind", ""),
            since=incoming.validated_data.get("since"),
            until=incoming.validated_data.get("until"),
        )
        entries = audit_entries(organization=acting_organization(request), chosen=chosen)
        pages = ApiPages()
        page = pages.paginate_queryset(entries, request, view=self)
        return pages.get_paginated_response(AuditEntryOut(page, many=True).data)
