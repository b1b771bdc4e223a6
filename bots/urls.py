"""Dashboard pages under /dashboard/, in the `dashboard` namespace: the bots' own pages
here, and each package's pages from its urls module (names unchanged)."""

from __future__ import annotations

from django.urls import path

from bots import views
from bots.moderation_log import urls as moderation_log_urls
from bots.privacy import urls as privacy_urls
from bots.tickets import urls as ticket_urls
from bots.tuning import urls as tuning_urls

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard_home, name="home"),
    path("bots/new", views.bot_new, name="bot-new"),
    path("bots/<int:bot_id>/", views.bot_page, name="bot"),
    path("bots/<int:bot_id>/delete", views.bot_delete_view, name="bot-delete"),
    *tuning_urls.urlpatterns,
    *ticket_urls.urlpatterns,
    *moderation_log_urls.urlpatterns,
    *privacy_urls.urlpatterns,
]
