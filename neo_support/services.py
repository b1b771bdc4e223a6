"""Writes for tenancy: organizations, memberships, API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from neo_support.models import ApiKey, Membership, Organization, Role

API_KEY_PREFIX = "neo_"
# Writing last_used_at on every request would turn reads into writes; once a minute is plenty.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def organization_create(*, name: str, owner: AbstractBaseUser | None = None) -> Organization:
    """Create an organization with a unique slug and, if given, its owner's membership."""
    name = name.strip()
    if not name:
        raise ValueError("An organization needs a name.")
    base = slugify(name)[:70] or "org"
    slug, suffix = base, 1
    while Organization.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base}-{suffix}"
    with transaction.atomic():
        organization = Organization.objects.create(name=name, slug=slug)
        if owner is not None:
            Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    return organization


def membership_set(*, organization: Organization, user: AbstractBaseUser, role: str) -> Membership:
    """Add `user` to `organization` with `role`, or change the role they have."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    return membership


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *,
    organization: Organization,
    name: str,
    created_by: AbstractBaseUser | None = None,
    scopes: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is shown once and never stored."""
    prefix = secrets.token_hex(4)
    raw_key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name.strip() or "API key",
        prefix=prefix,
        key_hash=_hash_key(raw_key),
        scopes=scopes or [],
        created_by=created_by,
    )
    return api_key, raw_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last use recorded; None when unknown or revoked."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    api_key = ApiKey.objects.select_related("organization").filter(prefix=prefix).first()
    if api_key is None or not api_key.is_active:
        return None
    if not hmac.compare_digest(api_key.key_hash, _hash_key(raw_key)):
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
