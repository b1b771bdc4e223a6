"""Authentication, permissions and rate limits for the REST API: API keys, the acting
organization, role and scope checks. Kept apart from `neo_support.api` because DRF
imports these while its own views module is still loading."""

from __future__ import annotations

from typing import Any, cast

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from neo_support.models import ApiKey, Membership, Organization
from neo_support.permissions import role_may, scopes_allow
from neo_support.rate_limits import rate_hit_sync
from neo_support.selectors import membership_current
from neo_support.services import api_key_authenticate


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer neo_…`. The request then acts for the key's organization."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer <key>'.")
        api_key = api_key_authenticate(raw_key=header[1].decode(errors="replace"))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return (None, api_key)

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


def _session_membership(request: Request) -> Membership | None:
    """The signed-in user's membership in the session's current organization (the one the
    dashboard's header shows), so the browser's API calls act where its pages do."""
    if request.user is None:
        return None
    return membership_current(user=request.user, session=getattr(request, "session", None))


def acting_organization(request: Request) -> Organization:
    """The organization a request acts for: its API key's (always exactly one), or the
    signed-in member's current organization."""
    if isinstance(request.auth, ApiKey):
        return cast(Organization, request.auth.organization)
    membership = _session_membership(request)
    if membership is None:
        raise exceptions.PermissionDenied("You are not a member of any organization.")
    return cast(Organization, membership.organization)


class OrganizationPermission(BasePermission):
    """The view's `api_area` decides: an API key needs the scope, a member the role
    (neo_support.permissions). Reads are GET/HEAD/OPTIONS; everything else writes."""

    message = "Your role or API key may not do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        area = getattr(view, "api_area", None)
        write = request.method not in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            if area is None:
                return not request.auth.scopes
            if not scopes_allow(request.auth.scopes, area, write=write):
                self.message = f"This API key lacks the scope {area}:{'write' if write else 'read'}."
                return False
            return True
        if request.user is None or not request.user.is_authenticated:
            return False
        membership = _session_membership(request)
        if membership is None:
            self.message = "You are not a member of any organization."
            return False
        if area is None:
            return role_may(membership.role, "settings", write=write)
        if not role_may(membership.role, area, write=write):
            self.message = f"Your role ({membership.role}) may not {'change' if write else 'read'} {area}."
            return False
        return True


class ApiRateThrottle(BaseThrottle):
    """NEO_RATE_API per API key, else per signed-in user, else per client address."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            identity = f"key:{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            identity = f"user:{request.user.pk}"
        else:
            identity = f"ip:{self.get_ident(request)}"
        self._wait = rate_hit_sync("NEO_RATE_API", identity)
        return self._wait == 0

    def wait(self) -> float | None:
        return self._wait or None
