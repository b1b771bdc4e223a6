"""Authentication and permissions for the REST API: API keys, the acting organization,
role checks. Kept apart from `neo_support.api` because DRF imports these while its
own views module is still loading."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from neo_support.models import ApiKey, Organization, Role
from neo_support.selectors import membership_current
from neo_support.services import api_key_authenticate

WRITE_ROLES = {Role.OWNER, Role.ADMIN}


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


def acting_organization(request: Request) -> Organization:
    """The organization a request acts for: its API key's, or the logged-in member's."""
    if isinstance(request.auth, ApiKey):
        return request.auth.organization
    membership = membership_current(user=request.user) if request.user is not None else None
    if membership is None:
        raise exceptions.PermissionDenied("You are not a member of any organization.")
    return membership.organization


class OrganizationPermission(BasePermission):
    """API keys and owners/admins may write; agents and viewers may read."""

    message = "Your role in this organization may only read."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        if request.user is None or not request.user.is_authenticated:
            return False
        membership = membership_current(user=request.user)
        if membership is None:
            return False
        return request.method in SAFE_METHODS or membership.role in WRITE_ROLES
