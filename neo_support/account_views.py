"""The few account pages that are ours rather than allauth's as they come: the account
overview (the header's "Account" link), ending one session, and small changes to
allauth's sign-in, sign-out and email verification views."""

from __future__ import annotations

import logging
from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account import views as allauth_views
from allauth.account.models import EmailAddress
from allauth.usersessions.adapter import get_adapter as get_sessions_adapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from neo_support.accounts import has_totp, quietly, two_factor_required
from neo_support.sso import sso_config
from neo_support.sso_config import PROVIDER_ID

logger = logging.getLogger(__name__)


@login_required
def account_overview(request: HttpRequest) -> HttpResponse:
    """Who is signed in, and links to the password, two-factor and sessions pages."""
    user = request.user
    context = {
        "emails": EmailAddress.objects.filter(user_id=user.pk).order_by("-primary", "email"),
        "has_totp": has_totp(user),
        "two_factor_required": two_factor_required(user),
        "session_count": len(UserSession.objects.purge_and_list(user)),
    }
    return render(request, "account/overview.html", context)


@login_required
@require_POST
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    """Sign out one of the user's other sessions (another browser or device) at once."""
    session = UserSession.objects.filter(pk=session_id, user_id=request.user.pk).first()
    if session is None:
        raise Http404("No such session.")
    if session.is_current():
        messages.error(request, "That is this browser: use Log out to end it.")
    else:
        get_sessions_adapter().end_sessions([session])
        messages.success(request, f"The session from {session.ip} is signed out.")
    return redirect("usersessions_list")


class LoginView(allauth_views.LoginView):
    """allauth's sign-in, which also tells the page whether anyone may sign up."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["signup_open"] = settings.NEO_SIGNUP == "open"
        sso = sso_config()
        context["sso_name"] = sso.name if sso is not None else None
        context["sso_provider_id"] = PROVIDER_ID
        return context


class LogoutView(allauth_views.LogoutView):
    """Signing out takes a POST with the CSRF token: a GET (an <img src> on any page)
    answers 405 rather than allauth's confirmation page."""

    http_method_names = ["post", "options"]


class ConfirmEmailView(allauth_views.ConfirmEmailView):
    """allauth's email verification, whose refused links (expired, used, not valid) answer
    410 and are logged without their key."""

    def get(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(*args, **kwargs)
        if self.object is None:
            response.status_code = 410
            quietly(response)
        return response

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(*args, **kwargs)
        except Http404:
            self.object = None
            return quietly(self.render_to_response(self.get_context_data(), status=410))

    def get_object(self, queryset: Any = None) -> Any:
        try:
            return super().get_object(queryset)
        except Http404:
            logger.warning("Email verification link refused: %s", _why_refused(self.kwargs["key"]))
            raise


def _why_refused(key: str) -> str:
    """In words, why allauth found no address to verify for `key` (never the key)."""
    max_age = 60 * 60 * 24 * account_settings.EMAIL_CONFIRMATION_EXPIRE_DAYS
    try:
        pk = signing.loads(key, max_age=max_age, salt=account_settings.SALT)
    except signing.SignatureExpired:
        return "expired"
    except signing.BadSignature:
        return "not a valid link"
    if EmailAddress.objects.filter(pk=pk, verified=True).exists():
        return f"already used (address {pk} is verified)"
    return f"address {pk} no longer exists"


def too_many_requests(request: HttpRequest) -> HttpResponse:
    """allauth's answer to a throttled request (ROOT_URLCONF.handler429). Logged by the
    page's name: a path such as a password reset link's carries a secret."""
    page = getattr(request.resolver_match, "url_name", None) or "an account page"
    logger.warning("Throttled: too many requests to %s from %s", page, request.META.get("REMOTE_ADDR") or "unknown")
    return quietly(render(request, "account/too_many_requests.html", status=429))
