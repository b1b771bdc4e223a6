"""The agents' inbox (included in the `dashboard` namespace by bots/urls.py)."""

from __future__ import annotations

from django.urls import path

from bots.tickets import views

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:ticket_id>/", views.ticket_page, name="ticket"),
    path("inbox/<int:ticket_id>/act", views.ticket_act, name="ticket-act"),
]
