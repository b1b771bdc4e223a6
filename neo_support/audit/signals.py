"""Sign-ins and failed sign-ins into the audit log of every organization the account
belongs to. A failed attempt on an address with no account reaches no organization, so it
is only logged for the operator. The password is never recorded (Django hands the
receiver cleansed credentials, and only the username or email is kept from them)."""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.signals import user_logged_in
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest

from neo_support.audit.context import client_ip
from neo_support.audit.recording import record
from neo_support.models import Membership

logger = logging.getLogger(__name__)


def _organizations_of(user_id: int) -> list[int]:
    return list(Membership.objects.filter(user_id=user_id).values_list("organization_id", flat=True))


@receiver(user_logged_in, dispatch_uid="neo_audit_sign_in")
def sign_in_recorded(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    ip = client_ip(request) if request is not None else None
    for organization_id in _organizations_of(user.pk):
        record(
            organization=organization_id,
            action="account.sign_in",
            target=user,
            target_label=user.get_username(),
            actor=user,
            ip=ip,
        )


@receiver(user_login_failed, dispatch_uid="neo_audit_sign_in_failed")
def sign_in_failure_recorded(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    typed = str(credentials.get("email") or credentials.get("username") or "").strip()[:200]
    ip = client_ip(request) if request is not None else None
    user = (
        get_user_model().objects.filter(Q(username__iexact=typed) | Q(email__iexact=typed)).first() if typed else None
    )
    organizations = _organizations_of(user.pk) if user is not None else []
    if not organizations:
        logger.info("Failed sign-in for %r from %s (no organization to record it in)", typed, ip or "unknown")
    for organization_id in organizations:
        record(
            organization=organization_id,
            action="account.sign_in_failed",
            target=user,
            target_label=typed,
            actor=None,
            ip=ip,
            after={"login": typed},
        )
