"""Reads for tenancy: the organization a signed-in user acts in, the organizations they
belong to, and whether this install still needs its first-run setup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from neo_support.models import Membership, Organization, Role, SetupRecord

# The session key holding the id of the organization chosen in the header's switcher.
CURRENT_ORGANIZATION_KEY = "neo_organization"


def membership_current(
    *, user: AbstractBaseUser | AnonymousUser, session: Mapping[str, Any] | None
) -> Membership | None:
    """The membership the dashboard and the session-authenticated API act under: the
    organization chosen in `session` (the header's switcher) while the user is still a
    member of it, otherwise the user's oldest membership. None for a signed-out visitor and
    for a user of no organization.

    `session` is required, even as None, so no caller forgets it: without it a user of
    several organizations would act in the oldest one whatever the header shows."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("organization").filter(user=user)
    chosen = session.get(CURRENT_ORGANIZATION_KEY) if session is not None else None
    if isinstance(chosen, int):
        membership = memberships.filter(organization_id=chosen).first()
        if membership is not None:
            return cast(Membership, membership)
    return cast("Membership | None", memberships.order_by("created_at", "pk").first())


def memberships_of(*, user: AbstractBaseUser | AnonymousUser) -> list[Membership]:
    """Every organization the user belongs to (for the switcher), by organization name."""
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.select_related("organization").filter(user=user).order_by("organization__name", "pk")
    )


def organization_creation_allowed(*, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether `user` may create another organization: the install allows it
    (NEO_ALLOW_NEW_ORGANIZATIONS) and they own one already, or are a superuser."""
    if not settings.NEO_ALLOW_NEW_ORGANIZATIONS or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return cast(bool, Membership.objects.filter(user=user, role=Role.OWNER).exists())


def setup_open() -> bool:
    """Whether the first-run setup (/setup/) may still run: it has never run and no
    organization exists (the demo's, or one made in Django admin, closes it too)."""
    return not SetupRecord.objects.exists() and not Organization.objects.exists()
