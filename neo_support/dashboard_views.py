"""Dashboard pages for the organization: the team and its invitations, API keys,
webhooks and settings. Every member reads the team, webhooks and settings; owners and
admins change them. API keys are for owners and admins only, reading included."""

from __future__ import annotations

import smtplib
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from neo_support.access import dashboard_area, forbidden, may_manage, member_required
from neo_support.accounts import has_totp, invitation_email_has_account, invitation_refused_page, invitation_remember
from neo_support.forms import ApiKeyForm, InvitationForm, MemberRoleForm, OrganizationSettingsForm
from neo_support.health import check_models
from neo_support.models import ApiKey, Invitation, Membership, Role
from neo_support.permissions import Area
from neo_support.services import (
    TeamError,
    TeamForbidden,
    api_key_create,
    api_key_revoke,
    invitation_accept,
    invitation_create,
    invitation_refusal,
    invitation_revoke,
    invitation_send,
    membership_change_role,
    membership_remove,
    organization_rename,
    organization_require_two_factor,
    organization_switch,
)

ROLE_ORDER = list(Role.values)  # owner, admin, agent, viewer


# Team ------------------------------------------------------------------------


def _team_page(
    request: HttpRequest, membership: Membership, *, invite_form: InvitationForm | None = None, status: int = 200
) -> HttpResponse:
    organization = membership.organization
    is_owner = membership.role == Role.OWNER
    can_manage = may_manage(membership)
    members = sorted(
        Membership.objects.for_organization(organization).select_related("user"),
        key=lambda member: (ROLE_ORDER.index(member.role), member.created_at),
    )
    rows = [
        {"member": member, "editable": can_manage and (is_owner or member.role != Role.OWNER)} for member in members
    ]
    invitations = [
        {"invitation": invitation, "accept_url": _accept_url(request, invitation)}
        for invitation in Invitation.objects.for_organization(organization)
        .filter(accepted_at__isnull=True)
        .select_related("invited_by")
    ]
    grantable = [choice for choice in Role.choices if is_owner or choice[0] != Role.OWNER]
    context = {
        "organization": organization,
        "membership": membership,
        "rows": rows,
        "invitations": invitations,
        "can_manage": can_manage,
        "grantable_roles": grantable,
        "invite_form": invite_form or InvitationForm(can_grant_owner=is_owner),
    }
    return render(request, "dashboard/team.html", context, status=status)


def _accept_url(request: HttpRequest, invitation: Invitation) -> str:
    return cast(str, request.build_absolute_uri(reverse("organization:invitation", kwargs={"token": invitation.token})))


@dashboard_area(Area.TEAM)
@member_required
def team(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _team_page(request, membership)


@dashboard_area(Area.TEAM)
@member_required
@require_POST
def team_invite(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Invite someone by email; the page again, with what was typed, when that fails."""
    if not may_manage(membership):
        return forbidden(request)
    form = InvitationForm(request.POST, can_grant_owner=membership.role == Role.OWNER)
    if not form.is_valid():
        return _team_page(request, membership, invite_form=form, status=400)
    try:
        invitation = invitation_create(
            organization=membership.organization,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
    except TeamError as error:
        form.add_error(None, str(error))
        return _team_page(request, membership, invite_form=form, status=400)
    accept_url = _accept_url(request, invitation)
    try:
        invitation_send(invitation=invitation, accept_url=accept_url)
    except (OSError, smtplib.SMTPException) as error:
        messages.warning(
            request,
            f"The invitation is saved but the email could not be sent ({error}). Send them this link: {accept_url}",
        )
    else:
        messages.success(request, f"Invitation sent to {invitation.email}.")
    return redirect("organization:team")


@dashboard_area(Area.TEAM)
@member_required
@require_POST
def team_member(request: HttpRequest, membership: Membership, membership_id: int) -> HttpResponse:
    """Change a member's role (action=role) or remove them (action=remove)."""
    member = (
        Membership.objects.for_organization(membership.organization).select_related("user").filter(pk=membership_id)
    ).first()
    if member is None:
        raise Http404("No such member.")
    if not may_manage(membership):
        return forbidden(request)
    action = request.POST.get("action", "")
    name = member.user.get_username()
    try:
        if action == "remove":
            membership_remove(membership=member, by=membership)
            messages.success(request, f"{name} was removed from {membership.organization.name}.")
        elif action == "role":
            form = MemberRoleForm(request.POST)
            if not form.is_valid():
                raise TeamError("Choose one of the roles.")
            membership_change_role(membership=member, role=form.cleaned_data["role"], by=membership)
            messages.success(request, f"{name} is now {member.get_role_display().lower()}.")
        else:
            raise TeamError(f"Unknown action {action!r}.")
    except TeamError as error:
        messages.error(request, str(error))
        return _team_page(request, membership, status=403 if isinstance(error, TeamForbidden) else 400)
    return redirect("organization:team")


@dashboard_area(Area.TEAM)
@member_required
@require_POST
def team_invitation_revoke(request: HttpRequest, membership: Membership, invitation_id: int) -> HttpResponse:
    invitation = Invitation.objects.for_organization(membership.organization).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    if not may_manage(membership):
        return forbidden(request)
    try:
        invitation_revoke(invitation=invitation)
    except TeamError as error:
        messages.error(request, str(error))
        return _team_page(request, membership, status=400)
    messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("organization:team")


def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's link: what it is for, and a button that accepts it for the
    logged-in user. The token alone finds it, whichever organization the user is in.
    Signed out, the invited address logs in to its account, or, without one, signs up
    from here (unless NEO_SIGNUP is closed)."""
    invitation = Invitation.objects.select_related("organization", "invited_by").filter(token=token[:64]).first()
    if not request.user.is_authenticated:
        return _invitation_signed_out(request, invitation)
    if request.method == "POST":
        try:
            membership = invitation_accept(token=token[:64], user=request.user)
        except TeamError as error:
            return invitation_refused_page(request, invitation, str(error))
        assert invitation is not None  # invitation_accept refuses an unknown token
        # The organization just joined is the one the dashboard shows next.
        organization_switch(session=request.session, user=request.user, organization_id=membership.organization_id)
        messages.success(request, f"Welcome to {invitation.organization.name}.")
        return redirect("dashboard:home")
    refusal = invitation_refusal(invitation=invitation, user=request.user)
    if refusal is not None:
        return invitation_refused_page(request, invitation, refusal)
    return render(request, "dashboard/invitation.html", {"invitation": invitation})


def _invitation_signed_out(request: HttpRequest, invitation: Invitation | None) -> HttpResponse:
    refusal = invitation_refusal(invitation=invitation, user=None)
    if refusal is not None:
        return invitation_refused_page(request, invitation, refusal)
    assert invitation is not None  # invitation_refusal refuses a missing one
    if request.method == "POST" or invitation_email_has_account(invitation) or settings.NEO_SIGNUP == "closed":
        # Accepting needs the account: log in, then come back to this page.
        return redirect_to_login(request.get_full_path())
    invitation_remember(request, invitation)
    return render(request, "dashboard/invitation.html", {"invitation": invitation, "sign_up": True})


# API keys --------------------------------------------------------------------


@dashboard_area(Area.API_KEYS)
@member_required
def api_keys(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The organization's keys and a form for a new one, whose secret is shown in the
    response to the POST that made it, once: it is never stored."""
    if not may_manage(membership):
        return forbidden(request)
    form = ApiKeyForm()
    created: tuple[ApiKey, str] | None = None
    status = 200
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            created = api_key_create(
                organization=membership.organization,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
            )
            form = ApiKeyForm()
        else:
            status = 400
    keys = ApiKey.objects.for_organization(membership.organization).select_related("created_by")
    context = {
        "form": form,
        "keys": keys,
        "created_key": created[0] if created else None,
        "raw_key": created[1] if created else "",
    }
    response = render(request, "dashboard/api_keys.html", context, status=status)
    add_never_cache_headers(response)
    return response


@dashboard_area(Area.API_KEYS)
@member_required
@require_POST
def api_key_revoke_view(request: HttpRequest, membership: Membership, key_id: int) -> HttpResponse:
    api_key = ApiKey.objects.for_organization(membership.organization).filter(pk=key_id).first()
    if api_key is None:
        raise Http404("No such API key.")
    if not may_manage(membership):
        return forbidden(request)
    api_key_revoke(api_key=api_key)
    messages.success(request, f"{api_key.name} ({api_key.prefix}…) is revoked; requests with it are refused.")
    return redirect("organization:api-keys")


# Webhooks --------------------------------------------------------------------


# Settings --------------------------------------------------------------------


def email_summary() -> dict[str, str]:
    """How outgoing email leaves this server, in words; never the credentials."""
    backend = settings.EMAIL_BACKEND
    if backend.endswith("smtp.EmailBackend"):
        security = " with SSL" if settings.EMAIL_USE_SSL else " with STARTTLS" if settings.EMAIL_USE_TLS else ""
        transport = f"SMTP via {settings.EMAIL_HOST}:{settings.EMAIL_PORT}{security}"
    elif backend.endswith("console.EmailBackend"):
        transport = "Printed to the server's console: EMAIL_HOST is not set, so nothing is delivered"
    elif backend.endswith("locmem.EmailBackend"):
        transport = "Kept in memory (test mode): nothing is delivered"
    else:
        transport = backend
    return {"from": settings.DEFAULT_FROM_EMAIL, "transport": transport}


@dashboard_area(Area.SETTINGS)
@member_required
def organization_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    organization = membership.organization
    can_edit = may_manage(membership)
    is_owner = membership.role == Role.OWNER
    initial = {"name": organization.name, "require_two_factor": organization.require_two_factor}
    form = OrganizationSettingsForm(initial=initial, can_require_two_factor=is_owner)
    status = 200
    if request.method == "POST":
        if not can_edit:
            return forbidden(request)
        form = OrganizationSettingsForm(request.POST, initial=initial, can_require_two_factor=is_owner)
        if form.is_valid():
            try:
                organization_require_two_factor(
                    organization=organization, required=form.cleaned_data["require_two_factor"], by=membership
                )
            except TeamError as error:
                form.add_error("require_two_factor", str(error))
            else:
                organization_rename(organization=organization, name=form.cleaned_data["name"])
                messages.success(request, "Settings saved.")
                return redirect("organization:settings")
        status = 400
    context = {
        "organization": organization,
        "form": form,
        "can_edit": can_edit,
        "is_owner": is_owner,
        "has_totp": has_totp(request.user),
        "models": check_models()["models"],
        "email": email_summary(),
    }
    return render(request, "dashboard/settings.html", context, status=status)
