"""The moderation log (included in the `dashboard` namespace by bots/urls.py)."""

from __future__ import annotations

from django.urls import path

from bots.moderation_log import views

urlpatterns = [
    path("moderation/", views.moderation_log, name="moderation"),
    path(
        "moderation/<int:message_id>/false-positive",
        views.moderation_false_positive,
        name="moderation-false-positive",
    ),
    path(
        "moderation/taught/<int:example_id>/remove",
        views.moderation_taught_remove,
        name="moderation-example-remove",
    ),
]
