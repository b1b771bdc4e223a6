"""Writes for tenancy: organizations, memberships, invitations, API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any, cast

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from neo_support import audit
from neo_support.models import (
    INVITATION_LIFETIME,
    ApiKey,
    Invitation,
    Membership,
    Organization,
    Role,
    new_invitation_token,
)
from neo_support.selectors import CURRENT_ORGANIZATION_KEY

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
        organization: Organization = Organization.objects.create(name=name, slug=slug)
        if owner is not None:
            Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
        # At first-run setup nobody is signed in yet: the new owner is the one acting.
        audit.record(organization=organization, action="organization.create", target=organization, actor=owner)
    return organization


def membership_set(*, organization: Organization, user: AbstractBaseUser, role: str) -> Membership:
    """Add `user` to `organization` with `role`, or change the role they have."""
    if role not in Role.values:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(user=user, organization=organization, defaults={"role": role})
    return cast(Membership, membership)


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
    audit.record(
        organization=organization,
        action="api_key.create",
        target=api_key,
        after={"name": api_key.name, "prefix": api_key.prefix, "scopes": api_key.scopes},
    )
    return api_key, raw_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, with its last use recorded; None when unknown or revoked."""
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    prefix = raw_key[len(API_KEY_PREFIX) :].split("_", 1)[0]
    api_key: ApiKey | None = ApiKey.objects.select_related("organization").filter(prefix=prefix).first()
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
        audit.record(organization=api_key.organization_id, action="api_key.revoke", target=api_key)
    return api_key


def organization_rename(*, organization: Organization, name: str) -> Organization:
    """Change the organization's display name; its slug stays, so links keep working."""
    name = name.strip()
    if not name:
        raise ValueError("An organization needs a name.")
    if name != organization.name:
        before = {"name": organization.name}
        organization.name = name
        organization.save(update_fields=["name"])
        audit.record(
            organization=organization,
            action="organization.settings_change",
            target=organization,
            before=before,
            after={"name": name},
        )
    return organization


def organization_require_two_factor(*, organization: Organization, required: bool, by: Membership) -> Organization:
    """Make a TOTP code mandatory, or not, for every member's sign-in. Only an owner may
    (TeamForbidden), and turning it on needs the owner's own TOTP first (TeamError), so the
    change never sends the person making it off to set one up."""
    if required == organization.require_two_factor:
        return organization
    if by.organization_id != organization.pk or by.role != Role.OWNER:
        raise TeamForbidden("Only an owner can change whether two-factor authentication is required.")
    if required and not Authenticator.objects.filter(user_id=by.user_id, type=Authenticator.Type.TOTP).exists():
        raise TeamError("Turn on two-factor authentication for your own account first.")
    organization.require_two_factor = required
    organization.save(update_fields=["require_two_factor"])
    audit.record(
        organization=organization,
        action="organization.settings_change",
        target=organization,
        before={"require_two_factor": not required},
        after={"require_two_factor": required},
    )
    return organization


def organization_switch(
    *, session: MutableMapping[str, Any], user: AbstractBaseUser, organization_id: int
) -> Membership | None:
    """Make `organization_id` the organization this session acts in (the dashboard and the
    session-authenticated API). None, and nothing changed, when `user` is not a member."""
    membership: Membership | None = (
        Membership.objects.select_related("organization").filter(user=user, organization_id=organization_id).first()
    )
    if membership is not None:
        session[CURRENT_ORGANIZATION_KEY] = membership.organization_id
    return membership


def organization_leave(*, membership: Membership) -> None:
    """Leave an organization. Refused (TeamError) for its last owner, who must make
    someone else an owner first or delete the organization."""
    with transaction.atomic():
        if membership.role == Role.OWNER and _is_last_owner(membership):
            raise TeamError(
                f"You are the last owner of {membership.organization.name}: make someone else an owner first, "
                "or delete the organization."
            )
        _record_member(membership, "member.leave", before={"role": membership.role})
        membership.delete()


# Team: invitations and roles -----------------------------------------------------


class TeamError(ValueError):
    """A team change that cannot be made; the message says why, for the person who asked."""


class TeamForbidden(TeamError):  # noqa: N818 - shown to the person who asked, like TeamError
    """A team change the acting member's role does not allow."""


MANAGING_ROLES = (Role.OWNER, Role.ADMIN)


def _role_of(*, organization: Organization, user: AbstractBaseUser | None) -> str | None:
    if user is None:
        return None
    return cast(
        "str | None",
        Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True).first(),
    )


def invitation_create(
    *, organization: Organization, email: str, role: str, invited_by: AbstractBaseUser | None = None
) -> Invitation:
    """Invite `email` to join with `role`, valid for seven days. Inviting an address that
    already has a pending (or expired, unaccepted) invitation renews that one with a new
    token, so only the latest link works. Refused for an unknown role, for an address that
    is already a member's, and for the owner role unless `invited_by` is an owner."""
    email = email.strip().lower()
    if not email or "@" not in email:
        raise TeamError("Enter an email address.")
    if role not in Role.values:
        raise TeamError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    inviter_role = _role_of(organization=organization, user=invited_by)
    if role == Role.OWNER and invited_by is not None and inviter_role != Role.OWNER:
        raise TeamForbidden("Only an owner can invite another owner.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise TeamError(f"{email} is already a member of {organization.name}.")
    with transaction.atomic():
        invitation: Invitation | None = (
            Invitation.objects.select_for_update()
            .filter(organization=organization, email=email, accepted_at__isnull=True)
            .first()
        )
        if invitation is None:
            invitation = Invitation.objects.create(
                organization=organization, email=email, role=role, invited_by=invited_by
            )
        else:
            invitation.role = role
            invitation.invited_by = invited_by
            invitation.token = new_invitation_token()
            invitation.expires_at = timezone.now() + INVITATION_LIFETIME
            invitation.save(update_fields=["role", "invited_by", "token", "expires_at"])
        audit.record(
            organization=organization, action="member.invite", target=invitation, after={"email": email, "role": role}
        )
    return cast(Invitation, invitation)


def invitation_send(*, invitation: Invitation, accept_url: str) -> None:
    """Email the invitation, with its absolute `accept_url`, from DEFAULT_FROM_EMAIL."""
    inviter = invitation.invited_by.get_username() if invitation.invited_by is not None else "Someone"
    organization = invitation.organization.name
    body = (
        f"{inviter} invited you to join {organization} on Neo Support as {invitation.get_role_display().lower()}.\n\n"
        f"Accept the invitation here:\n{accept_url}\n\n"
        f"The link works once and expires on {invitation.expires_at:%Y-%m-%d %H:%M %Z}. "
        "If you were not expecting this email, you can ignore it.\n"
    )
    send_mail(
        subject=f"You are invited to {organization} on Neo Support",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


def invitation_refusal(*, invitation: Invitation | None, user: AbstractBaseUser | None) -> str | None:
    """Why `user` cannot accept `invitation` (looked up by its token), or None when they can.
    With no `user`, why nobody can (a visitor signing up from the link)."""
    if invitation is None:
        return "This invitation link is not valid: it may have been revoked or replaced by a newer one."
    if invitation.accepted_at is not None:
        return "This invitation has already been used."
    if invitation.is_expired:
        return "This invitation has expired. Ask an owner or admin to invite you again."
    if user is not None and Membership.objects.filter(organization_id=invitation.organization_id, user=user).exists():
        return f"You are already a member of {invitation.organization.name}."
    return None


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Make `user` a member with the invitation's role and mark the invitation used.
    TeamError for an unknown (revoked, replaced), used or expired invitation, and for a
    user who is a member already (accepting must never change an existing role)."""
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("organization")
            .filter(token=token)
            .first()
        )
        refusal = invitation_refusal(invitation=invitation, user=user)
        if refusal is not None:
            raise TeamError(refusal)
        assert invitation is not None  # invitation_refusal refuses a missing one
        membership = membership_set(organization=invitation.organization, user=user, role=invitation.role)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        _record_member(membership, "member.join", after={"role": membership.role})
    return membership


def invitation_revoke(*, invitation: Invitation) -> None:
    """Withdraw a pending invitation: its link stops working."""
    if invitation.accepted_at is not None:
        raise TeamError("This invitation has already been accepted; remove the member instead.")
    with transaction.atomic():
        audit.record(organization=invitation.organization_id, action="member.invitation_revoke", target=invitation)
        invitation.delete()


def _check_team_change(*, membership: Membership, by: Membership, touches_owner: bool) -> None:
    if by.organization_id != membership.organization_id or by.role not in MANAGING_ROLES:
        raise TeamForbidden("Only owners and admins can change the team.")
    if touches_owner and by.role != Role.OWNER:
        raise TeamForbidden("Only an owner can grant or remove the owner role.")


def _is_last_owner(membership: Membership) -> bool:
    # Locks the owners' rows, so two owners demoting each other at once cannot both succeed.
    owners = list(
        Membership.objects.select_for_update()
        .filter(organization_id=membership.organization_id, role=Role.OWNER)
        .values_list("pk", flat=True)
    )
    return owners == [membership.pk]


def membership_change_role(*, membership: Membership, role: str, by: Membership) -> Membership:
    """Give a member another role, as `by` (an owner or admin). Only owners grant or take
    away the owner role, and the organization always keeps at least one owner."""
    if role not in Role.values:
        raise TeamError(f"Unknown role {role!r}; expected one of {', '.join(Role.values)}.")
    changes_owner = role != membership.role and Role.OWNER in (role, membership.role)
    _check_team_change(membership=membership, by=by, touches_owner=changes_owner)
    if role == membership.role:
        return membership
    with transaction.atomic():
        if membership.role == Role.OWNER and _is_last_owner(membership):
            raise TeamError("An organization needs at least one owner: make someone else an owner first.")
        before = {"role": membership.role}
        membership.role = role
        membership.save(update_fields=["role"])
        _record_member(membership, "member.role_change", before=before, after={"role": role})
    return membership


def membership_remove(*, membership: Membership, by: Membership) -> None:
    """Remove a member, as `by` (an owner or admin). Only owners remove owners, and the
    last owner cannot be removed."""
    _check_team_change(membership=membership, by=by, touches_owner=membership.role == Role.OWNER)
    with transaction.atomic():
        if membership.role == Role.OWNER and _is_last_owner(membership):
            raise TeamError("An organization needs at least one owner: make someone else an owner first.")
        _record_member(membership, "member.remove", before={"role": membership.role})
        membership.delete()


def _record_member(
    membership: Membership, action: str, *, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None
) -> None:
    """An audit entry about a membership, labelled with the member's name (the row may be
    about to go)."""
    audit.record(
        organization=membership.organization_id,
        action=action,
        target=membership,
        target_label=str(membership.user.get_username()),
        before=before,
        after=after,
    )
