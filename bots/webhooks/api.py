"""REST endpoints for outgoing webhooks: endpoints (create, list, show, delete) and
their deliveries. The signing secret is returned once, when the endpoint is created."""

from __future__ import annotations

from typing import cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from bots.webhooks.services import WebhookRejected, webhook_endpoint_create, webhook_endpoint_delete
from neo_support.api import ApiPages, api_error
from neo_support.api_auth import acting_organization
from neo_support.api_schema import paginated
from neo_support.permissions import Area


class WebhookEndpointOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "active", "created_at"]


class WebhookEndpointCreatedOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "active", "created_at", "secret"]


class WebhookEndpointIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.values), required=False, default=list
    )
    active = serializers.BooleanField(required=False, default=True)


class WebhookDeliveryOut(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event", "status", "attempts", "last_status_code", "last_error", "next_attempt_at", "created_at",
            "delivered_at", "payload",
        ]  # fmt: skip


def _endpoint(request: Request, endpoint_id: int) -> WebhookEndpoint:
    organization = acting_organization(request)
    return cast(
        WebhookEndpoint, get_object_or_404(WebhookEndpoint.objects.for_organization(organization), pk=endpoint_id)
    )


class WebhookListApi(APIView):
    api_area = Area.WEBHOOKS

    @extend_schema(operation_id="webhooks_list", responses=paginated(WebhookEndpointOut))
    def get(self, request: Request) -> Response:
        endpoints = WebhookEndpoint.objects.for_organization(acting_organization(request)).order_by(
            "-created_at", "-id"
        )
        pages = ApiPages()
        page = pages.paginate_queryset(endpoints, request, view=self)
        return pages.get_paginated_response(WebhookEndpointOut(page, many=True).data)

    @extend_schema(request=WebhookEndpointIn, responses={201: WebhookEndpointCreatedOut})
    def post(self, request: Request) -> Response:
        incoming = WebhookEndpointIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        try:
            endpoint = webhook_endpoint_create(
                organization=acting_organization(request), url=data["url"], events=data["events"], active=data["active"]
            )
        except WebhookRejected as error:
            return api_error("rejected", str(error), status.HTTP_400_BAD_REQUEST)
        return Response(WebhookEndpointCreatedOut(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    api_area = Area.WEBHOOKS

    @extend_schema(responses=WebhookEndpointOut)
    def get(self, request: Request, endpoint_id: int) -> Response:
        return Response(WebhookEndpointOut(_endpoint(request, endpoint_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, endpoint_id: int) -> Response:
        webhook_endpoint_delete(endpoint=_endpoint(request, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    """Newest first, paginated; `?status=pending|delivered|failed` filters."""

    api_area = Area.WEBHOOKS

    @extend_schema(
        responses=paginated(WebhookDeliveryOut),
        parameters=[OpenApiParameter("status", str, enum=["pending", "delivered", "failed"])],
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        deliveries = _endpoint(request, endpoint_id).deliveries.order_by("-created_at", "-id")
        if request.query_params.get("status"):
            deliveries = deliveries.filter(status=request.query_params["status"])
        pages = ApiPages()
        page = pages.paginate_queryset(deliveries, request, view=self)
        return pages.get_paginated_response(WebhookDeliveryOut(page, many=True).data)
