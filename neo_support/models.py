"""Tenancy: organizations, their members and their API keys."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from neo_support import permissions
from neo_support.choices import TextChoices
from neo_support.tenancy import TenantModel, TenantQuerySet


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Members must sign in with a TOTP code: one without an authenticator is sent to set
    # one up before any other page (neo_support.middleware_two_factor). Owners set it.
    require_two_factor = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return cast(str, self.name)


class Role(TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"
    VIEWER = "viewer", "Viewer"


class Membership(TenantModel):
    organization_path = "organization"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiKey(TenantModel):
    """An organization's API key. Only a SHA-256 of the key is stored; `prefix` identifies it."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# What an API key may be limited to (neo_support.permissions).
API_SCOPES = permissions.API_SCOPES

INVITATION_LIFETIME = timedelta(days=7)


def new_invitation_token() -> str:
    return secrets.token_urlsafe(32)


def invitation_expiry() -> datetime:
    return cast(datetime, timezone.now()) + INVITATION_LIFETIME


class Invitation(TenantModel):
    """An email address asked to join an organization with a role; the emailed link
    carries `token`. A repeat invitation to a pending address renews this row."""

    organization_path = "organization"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()  # stored lower case
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True),
                name="invitation_unique_pending_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization} ({self.role})"

    @property
    def is_expired(self) -> bool:
        return cast(bool, self.expires_at <= timezone.now())

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and not self.is_expired


class SetupRecord(models.Model):
    """The install's first-run setup (/setup/), done once. Its one row (always pk 1) is
    created in the same transaction as the first organization and its owner, so a second
    setup, even one racing the first, fails on the primary key and creates nothing.
    Install-wide: it belongs to no organization."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="setup_record_singleton")]

    def __str__(self) -> str:
        return f"Set up {self.completed_at:%Y-%m-%d %H:%M}"


class AuditLogImmutable(Exception):  # noqa: N818 - a refusal, named for what is refused
    """The audit log is append-only: a recorded entry is never changed or deleted by the
    application (retention's `neo_support.audit.delete_expired` is the one way out)."""


class AuditEntryQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        raise AuditLogImmutable("Audit entries cannot be changed.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AuditLogImmutable("Audit entries cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutable("Audit entries cannot be deleted; retention removes expired ones.")


class AuditEntry(TenantModel):
    """One staff action: who (a user, an API key, or the system), did what, to which
    object, with the fields before and after, from which address, when. The actor and the
    target are kept as ids and labels, not foreign keys, so the entry outlives them and no
    deletion elsewhere ever has to rewrite it. Written by `neo_support.audit.record`."""

    organization_path = "organization"

    ACTOR_KINDS = (("user", "User"), ("api_key", "API key"), ("anonymous", "Signed-out visitor"), ("system", "System"))

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_entries")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor_kind = models.CharField(max_length=10, choices=ACTOR_KINDS, default="system", editable=False)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor_label = models.CharField(max_length=200, blank=True, editable=False)
    action = models.CharField(max_length=64, editable=False)
    target_kind = models.CharField(max_length=40, blank=True, editable=False)
    target_id = models.CharField(max_length=64, blank=True, editable=False)
    target_label = models.CharField(max_length=200, blank=True, editable=False)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, editable=False)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder, editable=False)
    ip = models.GenericIPAddressField(null=True, blank=True, editable=False)

    objects: Any = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="audit_org_time"),
            models.Index(fields=["organization", "action"], name="audit_org_action"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label or 'system'} {self.action} {self.target_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogImmutable("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditLogImmutable("Audit entries cannot be deleted; retention removes expired ones.")
