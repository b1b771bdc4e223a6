"""Webhook pages (included in the `organization` namespace by neo_support/dashboard_urls.py)."""

from __future__ import annotations

from django.urls import path

from bots.webhooks import views

urlpatterns = [
    path("webhooks/", views.webhooks, name="webhooks"),
    path("webhooks/<int:endpoint_id>/active", views.webhook_active, name="webhook-active"),
    path("webhooks/<int:endpoint_id>/delete", views.webhook_delete, name="webhook-delete"),
]
