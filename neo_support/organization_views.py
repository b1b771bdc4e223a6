"""Dashboard pages for a user's organizations: the list, a new one, switching the one
the dashboard acts in (the header's switcher), leaving one and deleting one.

These act on the organization named in the path or the form, with the user's role in
that one: switching in another tab never redirects a leave or a delete."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from neo_support.access import member_required
from neo_support.models import Membership, Organization, Role
from neo_support.organizations import organization_contents, organization_delete
from neo_support.selectors import CURRENT_ORGANIZATION_KEY, memberships_of, organization_creation_allowed
from neo_support.services import TeamError, organization_create, organization_leave, organization_switch


class OrganizationNewForm(forms.Form):
    name = forms.CharField(label="Organization name", max_length=200)


class OrganizationDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the organization's name to confirm", max_length=200)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_confirm_name(self) -> str:
        typed = str(self.cleaned_data["confirm_name"])
        if typed.strip() != self.organization.name.strip():
            raise forms.ValidationError("That is not this organization's name.")
        return typed


@member_required
def organization_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    context = {
        "current": membership,
        "rows": memberships_of(user=request.user),
        "may_create": organization_creation_allowed(user=request.user),
    }
    return render(request, "dashboard/organization_list.html", context)


@login_required
def organization_new(request: HttpRequest) -> HttpResponse:
    """A new organization, owned by the user who makes it, who then acts in it. For owners
    (and superusers) while NEO_ALLOW_NEW_ORGANIZATIONS is on."""
    if not organization_creation_allowed(user=request.user):
        reason = (
            "This server does not allow new organizations (NEO_ALLOW_NEW_ORGANIZATIONS is off)."
            if not settings.NEO_ALLOW_NEW_ORGANIZATIONS
            else "Only owners of an organization can create another one."
        )
        return render(request, "dashboard/organization_new.html", {"refused": reason}, status=403)
    form = OrganizationNewForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            organization = organization_create(name=form.cleaned_data["name"], owner=request.user)
            organization_switch(session=request.session, user=request.user, organization_id=organization.pk)
            messages.success(request, f"{organization.name} is ready, and you are its owner.")
            return redirect("dashboard:home")
        return render(request, "dashboard/organization_new.html", {"form": form}, status=400)
    return render(request, "dashboard/organization_new.html", {"form": form})


@login_required
@require_POST
def organization_switch_view(request: HttpRequest) -> HttpResponse:
    """Act in the posted `organization` from now on, in this session; then its overview
    (the page the user was on may belong to the organization they left)."""
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        return HttpResponseBadRequest("Choose an organization.")
    if organization_switch(session=request.session, user=request.user, organization_id=organization_id) is None:
        raise Http404("You are not a member of that organization.")
    return redirect("dashboard:home")


def _membership_in(request: HttpRequest, organization_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=request.user, organization_id=organization_id)
        .first()
    )
    if membership is None:
        raise Http404("You are not a member of that organization.")
    return cast(Membership, membership)


def _forget_if_current(request: HttpRequest, organization_id: int) -> None:
    if request.session.get(CURRENT_ORGANIZATION_KEY) == organization_id:
        del request.session[CURRENT_ORGANIZATION_KEY]


@login_required
def organization_leave_view(request: HttpRequest, organization_id: int) -> HttpResponse:
    """Leave an organization, after a confirmation; refused to its last owner."""
    membership = _membership_in(request, organization_id)
    organization = membership.organization
    context: dict[str, Any] = {"membership": membership, "organization": organization}
    if request.method != "POST":
        return render(request, "dashboard/organization_leave.html", context)
    try:
        organization_leave(membership=membership)
    except TeamError as error:
        context["error"] = str(error)
        return render(request, "dashboard/organization_leave.html", context, status=400)
    _forget_if_current(request, organization_id)
    messages.success(request, f"You left {organization.name}.")
    return redirect("dashboard:home")


@login_required
def organization_delete_view(request: HttpRequest, organization_id: int) -> HttpResponse:
    """Delete an organization with everything in it (owners only), once its name is typed;
    the page says first what goes, with counts."""
    membership = _membership_in(request, organization_id)
    organization = membership.organization
    if membership.role != Role.OWNER:
        return render(request, "dashboard/forbidden.html", status=403)
    posted = request.method == "POST"
    form = OrganizationDeleteForm(request.POST if posted else None, organization=organization)
    if posted and form.is_valid():
        name = organization.name
        organization_delete(organization=organization, by=membership)
        _forget_if_current(request, organization_id)
        messages.success(request, f"{name} and everything in it were deleted.")
        return redirect("dashboard:home")
    context = {
        "organization": organization,
        "form": form,
        "contents": organization_contents(organization=organization),
        "only_organization": len(memberships_of(user=request.user)) == 1,
    }
    return render(request, "dashboard/organization_delete.html", context, status=400 if posted else 200)
