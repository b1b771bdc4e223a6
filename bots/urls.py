from __future__ import annotations

from django.urls import path

from bots import inbox_views, model_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_home, name="home"),
    path("bots/new", views.bot_new, name="bot-new"),
    path("bots/<int:bot_id>/", views.bot_page, name="bot"),
    path("bots/<int:bot_id>/delete", views.bot_delete_view, name="bot-delete"),
    path("bots/<int:bot_id>/model/", model_views.model_page, name="bot-model"),
    path("bots/<int:bot_id>/model/status.json", model_views.model_status, name="bot-model-status"),
    path(
        "bots/<int:bot_id>/model/versions/<int:version_id>/dataset.jsonl",
        model_views.model_dataset,
        name="bot-model-dataset",
    ),
    path("moderation/", views.moderation_log, name="moderation"),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/<int:ticket_id>/", inbox_views.ticket_page, name="ticket"),
    path("inbox/<int:ticket_id>/act", inbox_views.ticket_act, name="ticket-act"),
    path(
        "moderation/<int:message_id>/false-positive",
        views.moderation_false_positive,
        name="moderation-false-positive",
    ),
]
