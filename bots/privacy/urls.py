"""Privacy pages (in the `dashboard` namespace by bots/urls.py)."""

from __future__ import annotations

from django.urls import path

from bots.privacy import views

urlpatterns = [
    path("privacy/", views.privacy_page, name="privacy"),
    path("privacy/export.zip", views.privacy_export, name="privacy-export"),
    path("privacy/erase", views.privacy_erase, name="privacy-erase"),
    path("privacy/erasures.json", views.privacy_erasures_status, name="privacy-erasures"),
    path("privacy/retention/", views.retention_page, name="retention"),
]
