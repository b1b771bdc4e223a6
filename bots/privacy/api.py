"""REST endpoints for privacy (scope `privacy:read` / `privacy:write`; owners from the
dashboard session): retention settings, finding a person, their archive, erasures."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import MAX_RETENTION_DAYS, PersonErasure
from bots.privacy.audit_hooks import audit
from bots.privacy.erasure import erasure_progress, person_erasure_start
from bots.privacy.export import archive_response
from bots.privacy.retention import KINDS, RetentionRefused, retention_days, retention_policy_update
from bots.privacy.selectors import (
    KEY_KINDS,
    PersonKey,
    PersonKeyInvalid,
    person_counts,
    person_find,
    retention_policy_of,
)
from neo_support.api import ApiPages, api_error
from neo_support.api_auth import acting_organization
from neo_support.api_schema import paginated
from neo_support.permissions import Area

_DAYS_HELP = f"Days kept (1 to {MAX_RETENTION_DAYS}); null keeps them forever. 0 is refused."


class RetentionSerializer(serializers.Serializer):
    conversations = serializers.IntegerField(allow_null=True, required=False, help_text=_DAYS_HELP)
    tickets = serializers.IntegerField(allow_null=True, required=False, help_text=_DAYS_HELP)
    attachments = serializers.IntegerField(allow_null=True, required=False, help_text=_DAYS_HELP)
    moderation = serializers.IntegerField(allow_null=True, required=False, help_text=_DAYS_HELP)
    audit_log = serializers.IntegerField(allow_null=True, required=False, help_text=_DAYS_HELP)


class PersonQueryIn(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KEY_KINDS), help_text="What `q` is: an email, a visitor id, a ticket.")
    q = serializers.CharField(max_length=254, help_text="The email address, visitor id, or ticket id or token.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            attrs["key"] = PersonKey.parse(attrs["kind"], attrs["q"])
        except PersonKeyInvalid as problem:
            raise serializers.ValidationError({"q": str(problem)}) from None
        return attrs


class PersonOut(serializers.Serializer):
    found = serializers.BooleanField()
    emails = serializers.ListField(child=serializers.CharField())
    visitor_ids = serializers.ListField(child=serializers.CharField())
    names = serializers.ListField(child=serializers.CharField())
    conversations = serializers.ListField(child=serializers.IntegerField(), help_text="Conversation ids.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows held, by kind.")


class ErasureOut(serializers.Serializer):
    id = serializers.IntegerField()
    subject = serializers.CharField(help_text="A masked hint of who it is; the person is not stored in clear.")
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    steps_done = serializers.IntegerField()
    steps_total = serializers.IntegerField()
    current_step = serializers.CharField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows or files erased, by step.")
    model_versions = serializers.ListField(
        child=serializers.CharField(), help_text="Tuned versions whose training data held the person."
    )
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _query(request: Request) -> PersonKey:
    incoming = PersonQueryIn(data=request.query_params)
    incoming.is_valid(raise_exception=True)
    key: PersonKey = incoming.validated_data["key"]
    return key


class RetentionApi(APIView):
    """Days each kind is kept; the hourly pass deletes what has expired."""

    api_area = Area.PRIVACY

    @extend_schema(operation_id="privacy_retention_retrieve", responses=RetentionSerializer)
    def get(self, request: Request) -> Response:
        return Response(retention_days(retention_policy_of(acting_organization(request))))

    @extend_schema(operation_id="privacy_retention_update", request=RetentionSerializer, responses=RetentionSerializer)
    def patch(self, request: Request) -> Response:
        """Change the kinds given; the others stay. Zero or negative days is a 400."""
        incoming = RetentionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        try:
            policy = retention_policy_update(
                organization=acting_organization(request), days=incoming.validated_data, by=request.user
            )
        except RetentionRefused as problem:
            kind = next((k for k in KINDS if str(problem).startswith(f"{k}:")), "days")
            return api_error(
                "invalid", "The request is invalid.", status.HTTP_400_BAD_REQUEST, fields={kind: [str(problem)]}
            )
        return Response(retention_days(policy))


class PersonApi(APIView):
    """Everything held about a person: `found` is false when nothing is."""

    api_area = Area.PRIVACY

    @extend_schema(operation_id="privacy_person_retrieve", parameters=[PersonQueryIn], responses=PersonOut)
    def get(self, request: Request) -> Response:
        person = person_find(organization=acting_organization(request), key=_query(request))
        body = {
            "found": person.found,
            "emails": sorted(person.emails) if person.found else [],
            "visitor_ids": sorted(person.visitor_ids) if person.found else [],
            "names": sorted(person.names),
            "conversations": sorted(person.conversation_ids),
            "counts": person_counts(person),
        }
        return Response(body)


class PersonExportApi(APIView):
    """The person's data as one zip archive (JSON and attachment files), streamed."""

    api_area = Area.PRIVACY

    @extend_schema(
        operation_id="privacy_person_export",
        parameters=[PersonQueryIn],
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The archive.")},
    )
    def get(self, request: Request) -> Any:
        organization = acting_organization(request)
        key = _query(request)
        person = person_find(organization=organization, key=key)
        if not person.found:
            return api_error("nothing_found", "Nothing is held about that person.", status.HTTP_404_NOT_FOUND)
        audit("person.export", organization=organization, by=request.user, details={"kind": key.kind})
        return archive_response(person)


class ErasureListApi(APIView):
    api_area = Area.PRIVACY

    @extend_schema(operation_id="privacy_erasures_list", responses=paginated(ErasureOut))
    def get(self, request: Request) -> Response:
        erasures = PersonErasure.objects.for_organization(acting_organization(request)).order_by("-created_at", "-id")
        pages = ApiPages()
        page = pages.paginate_queryset(erasures, request, view=self)
        return pages.get_paginated_response([erasure_progress(erasure) for erasure in page or []])

    @extend_schema(
        operation_id="privacy_erasures_create",
        request=PersonQueryIn,
        responses={
            202: OpenApiResponse(ErasureOut, description="Queued."),
            200: OpenApiResponse(ErasureOut, description="That person is already being erased: that erasure."),
        },
    )
    def post(self, request: Request) -> Response:
        """Erase everything about the person. Unknown: 404 `nothing_found`, nothing changes."""
        incoming = PersonQueryIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        started = person_erasure_start(
            organization=acting_organization(request), key=incoming.validated_data["key"], by=request.user
        )
        if started.erasure is None:
            return api_error("nothing_found", "Nothing is held about that person; nothing was changed.", 404)
        code = status.HTTP_202_ACCEPTED if started.created else status.HTTP_200_OK
        return Response(erasure_progress(started.erasure), status=code)


class ErasureDetailApi(APIView):
    api_area = Area.PRIVACY

    @extend_schema(operation_id="privacy_erasures_retrieve", responses=ErasureOut)
    def get(self, request: Request, erasure_id: int) -> Response:
        organization = acting_organization(request)
        erasure = get_object_or_404(PersonErasure.objects.for_organization(organization), pk=erasure_id)
        return Response(erasure_progress(erasure))
