from __future__ import annotations

from django.urls import path

from bots.chat import views

app_name = "conversations"

urlpatterns = [
    path("", views.conversation_index, name="index"),
    path("<int:conversation_id>/", views.conversation_detail, name="detail"),
]
