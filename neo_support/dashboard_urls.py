from __future__ import annotations

from django.urls import path

from bots.webhooks import urls as webhook_urls
from neo_support import dashboard_views as views
from neo_support import organization_views
from neo_support.audit import views as audit_views

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
    path("audit/", audit_views.audit_page, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("organizations/", organization_views.organization_list, name="organizations"),
    path("organizations/new", organization_views.organization_new, name="organization-new"),
    path("organizations/switch", organization_views.organization_switch_view, name="organization-switch"),
    path(
        "organizations/<int:organization_id>/leave",
        organization_views.organization_leave_view,
        name="organization-leave",
    ),
    path(
        "organizations/<int:organization_id>/delete",
        organization_views.organization_delete_view,
        name="organization-delete",
    ),
]
