from __future__ import annotations

from django.urls import path

from bots import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_home, name="home"),
    path("bots/<int:bot_id>/", views.bot_page, name="bot"),
    path("moderation/", views.moderation_log, name="moderation"),
    path(
        "moderation/<int:message_id>/false-positive",
        views.moderation_false_positive,
        name="moderation-false-positive",
    ),
]
