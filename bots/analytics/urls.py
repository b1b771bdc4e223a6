from __future__ import annotations

from django.urls import URLPattern, path

from bots.analytics import views as analytics_views

app_name = "analytics"

urlpatterns: list[URLPattern] = [
    path("", analytics_views.analytics_page, name="index"),
    path("export.csv", analytics_views.analytics_export, name="export"),
]
