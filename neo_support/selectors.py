"""Reads for tenancy."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from neo_support.models import Membership


def membership_current(*, user: AbstractBaseUser | AnonymousUser) -> Membership | None:
    """The membership the dashboard acts under: the user's oldest one, for now."""
    if not user.is_authenticated:
        return None
    return cast(
        "Membership | None",
        Membership.objects.select_related("organization").filter(user=user).order_by("created_at").first(),
    )
