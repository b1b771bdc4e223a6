from __future__ import annotations

from django.urls import path

from bots.webhooks import urls as webhook_urls
from neo_support import dashboard_views as views

app_name = "organization"

urlpatterns = [
    path("team/", views.team, name="team"),
    path("team/invite", views.team_invite, name="team-invite"),
    path("team/members/<int:membership_id>", views.team_member, name="member"),
    path("team/invitations/<int:invitation_id>/revoke", views.team_invitation_revoke, name="invitation-revoke"),
    path("invitations/<str:token>/", views.invitation_page, name="invitation"),
    path("api-keys/", views.api_keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke", views.api_key_revoke_view, name="api-key-revoke"),
    *webhook_urls.urlpatterns,
    path("settings/", views.organization_settings, name="settings"),
]
