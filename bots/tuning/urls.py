"""A bot's model page (included in the `dashboard` namespace by bots/urls.py)."""

from __future__ import annotations

from django.urls import path

from bots.tuning import views

urlpatterns = [
    path("bots/<int:bot_id>/model/", views.model_page, name="bot-model"),
    path("bots/<int:bot_id>/model/status.json", views.model_status, name="bot-model-status"),
    path(
        "bots/<int:bot_id>/model/versions/<int:version_id>/dataset.jsonl",
        views.model_dataset,
        name="bot-model-dataset",
    ),
]
