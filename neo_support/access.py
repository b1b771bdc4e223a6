"""Dashboard pages by area: sign-in, membership and the role table in one decorator,
and what the navigation may show (neo_support.permissions)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec, cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from neo_support.models import Membership
from neo_support.permissions import Area, role_may
from neo_support.selectors import membership_current
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
            membership = membership_current(user=request.user)
            if membership is None:
                return render(request, "dashboard/no_organization.html", status=403)
            if not role_may(membership.role, area, write=False):
                return render(request, "dashboard/forbidden.html", status=403)
            return view(request, *args, **kwargs)

        return cast(View, login_required(wrapped))

    return decorate


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: `can_see.<area>` for the signed-in member's role."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_see": {}}
    membership = membership_current(user=user)
    role = membership.role if membership is not None else ""
    return {"can_see": {area.value: role_may(role, area, write=False) for area in Area}}


def member_required(view: MemberView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """Log in first; then call `view` with the user's membership, or say they have none."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        membership = membership_current(user=request.user)
        if membership is None:
            return render(request, "dashboard/no_organization.html", status=403)
        return view(request, membership, *args, **kwargs)

    return cast("Callable[Concatenate[HttpRequest, P], HttpResponse]", wrapped)


def may_manage(membership: Membership) -> bool:
    """Whether the member may change the organization's team, keys, webhooks and settings."""
    return membership.role in MANAGING_ROLES


def forbidden(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", status=403)
