"""Dashboard pages by area: sign-in, membership and the role table in one decorator,
and what the navigation and the header's organization switcher show
(neo_support.permissions). Every page acts in the session's current organization
(neo_support.selectors.membership_current)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from neo_support.models import Membership
from neo_support.permissions import Area, role_may
from neo_support.selectors import membership_current, memberships_of, organization_creation_allowed, setup_open
from neo_support.services import MANAGING_ROLES

View = Callable[..., HttpResponse]
P = ParamSpec("P")
MemberView = Callable[Concatenate[HttpRequest, Membership, P], HttpResponse]


def dashboard_area(area: Area) -> Callable[[View], View]:
    """Only members whose role may read `area` reach the view; a signed-out visitor is
    sent to sign in, a user of no organization and a role without access get a 403 page.
    Writes are checked by the views themselves (they know which actions they offer)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            membership = membership_current(user=request.user, session=request.session)
            if membership is None:
                return no_organization(request)
            if not role_may(membership.role, area, write=False):
                return render(request, "dashboard/forbidden.html", status=403)
            return view(request, *args, **kwargs)

        return cast(View, login_required(wrapped))

    return decorate


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: `can_see.<area>` for the signed-in member's role in the current
    organization, that membership and all of the user's (the header's switcher), and
    `may_create_organization`, evaluated only by a template that asks."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_see": {}}
    membership = membership_current(user=user, session=getattr(request, "session", None))
    role = membership.role if membership is not None else ""
    return {
        "can_see": {area.value: role_may(role, area, write=False) for area in Area},
        "current_membership": membership,
        "memberships": memberships_of(user=user) if membership is not None else [],
        # A callable: the template calls it only where it is used.
        "may_create_organization": lambda: organization_creation_allowed(user=user),
    }


def member_required(view: MemberView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Log in first; then call `view` with the user's membership, or say they have none."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        membership = membership_current(user=request.user, session=request.session)
        if membership is None:
            return no_organization(request)
        return view(request, membership, *args, **kwargs)

    return cast("Callable[Concatenate[HttpRequest, P], HttpResponse]", wrapped)


def may_manage(membership: Membership) -> bool:
    """Whether the member may change the organization's team, keys, webhooks and settings."""
    return membership.role in MANAGING_ROLES


def forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", status=403)


def no_organization(request: HttpRequest) -> HttpResponse:
    """The page for a signed-in user of no organization: the setup page's link while the
    install has none at all, else how to get one (an invitation, or a new organization)."""
    context = {
        "setup_open": setup_open(),
        "may_create_organization": organization_creation_allowed(user=request.user),
    }
    return render(request, "dashboard/no_organization.html", context, status=403)
