from __future__ import annotations

from typing import Any

from django.contrib import admin

from neo_support.models import ApiKey, AuditEntry, Invitation, Membership, Organization, SetupRecord


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the application writes: shown, never added or changed by hand, and deleted
    here only when `deletable`."""

    deletable = False

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return self.deletable and super().has_delete_permission(request, obj)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the dashboard or API (the secret is shown once); here they can be revoked."""

    list_display = ["name", "prefix", "organization", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["organization"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "key_hash", "created_by", "created_at", "last_used_at"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made from the team page (which emails the link); here they can be read or deleted."""

    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role", "organization"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token", "invited_by", "created_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(SetupRecord)
class SetupRecordAdmin(ReadOnlyAdmin):
    """When and by whom the install was set up (/setup/). Read-only: the row is what keeps
    setup from running twice, so deleting it would reopen setup to the next visitor."""

    list_display = ["completed_at", "organization", "owner"]
    readonly_fields = ["organization", "owner", "completed_at"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Read-only: the audit log is append-only, so nothing here adds, changes or deletes."""

    list_display = ["created_at", "organization", "actor_label", "action", "target_kind", "target_label", "ip"]
    list_filter = ["action", "actor_kind", "organization"]
    search_fields = ["actor_label", "target_label", "action"]
