"""Mandatory two-factor: a member of an organization that requires it
(Organization.require_two_factor) and has no TOTP yet is sent to set one up before
anything else. Only the account pages (where that setup, sign-out and password changes
are), static files and the visitors' public endpoints stay open to them."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from neo_support.accounts import has_totp, two_factor_required

# Paths a member without the required TOTP may still reach. Everything else, the
# dashboard, the API with the session, Django admin, waits for the setup.
OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz", "/widget.js", "/chat/", "/demo/")


class TwoFactorRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(OPEN_PREFIXES) or not two_factor_missing(request):
            return self.get_response(request)
        message = "Your organization requires two-factor authentication: set it up to continue."
        if request.path.startswith("/api/"):
            return JsonResponse({"error": {"code": "two_factor_required", "message": message}}, status=403)
        messages.warning(request, message)
        return redirect("mfa_activate_totp")


def two_factor_missing(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return user is not None and two_factor_required(user) and not has_totp(user)
