"""The project's URLs plus the webhook API's, for tests/bots/webhooks/test_services.py (until
neo_support/urls.py routes them itself)."""

from __future__ import annotations

from django.urls import path

from bots.webhooks import api as webhook_api
from neo_support.urls import handler404, handler500
from neo_support.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]

urlpatterns = [
    path("api/webhooks/", webhook_api.WebhookListApi.as_view(), name="api-webhooks"),
    path("api/webhooks/<int:endpoint_id>/", webhook_api.WebhookDetailApi.as_view(), name="api-webhook"),
    path(
        "api/webhooks/<int:endpoint_id>/deliveries/",
        webhook_api.WebhookDeliveryListApi.as_view(),
        name="api-webhook-deliveries",
    ),
    *project_urlpatterns,
]
