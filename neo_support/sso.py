"""Staff sign-in through the install's OpenID Connect provider (settings: NEO_SSO, from
NEO_OIDC_*; neo_support/sso_config.py).

allauth's openid_connect provider runs the flow: state, PKCE, the code exchange, and the
ID token's signature, issuer (the discovery document's), audience and expiry. This module
adds what it leaves out and what is ours:
- a nonce, sent with the request and required back in the ID token;
- the issuer must be the configured one, not only whatever the discovery document says;
- the address must be verified by the provider and at an allowed domain;
- the first sign-in joins the domain's organization with the domain's role.
Every refusal creates nothing, answers a page saying why, and is logged without codes,
tokens or secrets."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, cast

from allauth.account.signals import user_logged_in
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from neo_support import audit
from neo_support.accounts import quietly
from neo_support.models import Membership, Organization
from neo_support.selectors import CURRENT_ORGANIZATION_KEY
from neo_support.sso_config import PROVIDER_ID, DomainRule, SsoConfig

logger = logging.getLogger(__name__)

NONCE_STATE_KEY = "nonce"


class NonceCheckingProvider(OpenIDConnectProvider):
    """allauth's OpenID Connect provider, sending a fresh nonce with every sign-in request
    and keeping it in the sign-in's state, where SingleSignOnAdapter compares it with
    the ID token's."""

    package = "allauth.socialaccount.providers.openid_connect"  # its URLs and templates

    def redirect(
        self, request: HttpRequest, process: Any, next_url: Any = None, data: Any = None, **kwargs: Any
    ) -> Any:
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        auth_params = dict(auth_params if auth_params is not None else self.get_auth_params())
        auth_params["nonce"] = nonce
        return super().redirect(request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs)


@dataclass(frozen=True)
class SsoRefusal:
    """Why a sign-in through the provider must not go on, in words for the person."""

    message: str
    status: int = 400


def sso_config() -> SsoConfig | None:
    return getattr(settings, "NEO_SSO", None)


def identity_claims(sociallogin: SocialLogin) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ID token claims, profile claims): the profile is the userinfo response when there
    was one, else the ID token, as allauth reads it."""
    data = sociallogin.account.extra_data or {}
    id_token = data.get("id_token")
    id_token = id_token if isinstance(id_token, dict) else {}
    userinfo = data.get("userinfo")
    return id_token, userinfo if isinstance(userinfo, dict) and userinfo else id_token


def sso_refusal(*, config: SsoConfig | None, sociallogin: SocialLogin) -> SsoRefusal | None:
    """Why this sign-in must stop, or None when it may go on. Checked before any account
    or membership is made or looked up for it."""
    if config is None:
        return SsoRefusal("Single sign-on is not set up on this server.", status=404)
    id_token, profile = identity_claims(sociallogin)
    if not id_token:
        return SsoRefusal("The sign-in provider sent no ID token.")
    expected_nonce = str((sociallogin.state or {}).get(NONCE_STATE_KEY) or "")
    received_nonce = str(id_token.get("nonce") or "")
    if not expected_nonce or not hmac.compare_digest(expected_nonce, received_nonce):
        return SsoRefusal("The sign-in response does not belong to this sign-in (nonce mismatch). Please start again.")
    if str(id_token.get("iss") or "").rstrip("/") != config.issuer.rstrip("/"):
        return SsoRefusal("The sign-in response came from a provider this server does not trust (issuer mismatch).")
    if profile.get("sub") not in (None, id_token.get("sub")):
        return SsoRefusal("The sign-in provider described two different people (subject mismatch).")
    email = str(profile.get("email") or "").strip()
    if not email:
        return SsoRefusal("The sign-in provider did not share your email address, which this server needs.")
    if profile.get("email_verified") is False:
        return SsoRefusal("Your email address is not verified at the sign-in provider.", status=403)
    rule = config.rule_for(email)
    if rule is None:
        domain = email.rpartition("@")[2]
        return SsoRefusal(f"Addresses at {domain} may not sign in to this server.", status=403)
    if not Organization.objects.filter(slug=rule.organization_slug).exists():
        logger.error(
            "NEO_OIDC_DOMAINS names organization %r, which does not exist: fix the setting", rule.organization_slug
        )
        return SsoRefusal("Single sign-on is not set up correctly for your address. Tell this server's administrator.")
    return None


def refused_page(request: HttpRequest, refusal: SsoRefusal) -> HttpResponse:
    response = render(
        request,
        "socialaccount/authentication_error.html",
        {"reason": refusal.message, "sso_name": getattr(sso_config(), "name", "Single sign-on")},
        status=refusal.status,
    )
    return quietly(response)  # the callback's query string carries the code: we log ourselves


def email_domain(sociallogin: SocialLogin) -> str:
    _, profile = identity_claims(sociallogin)
    return str(profile.get("email") or "").rpartition("@")[2] or "(none)"


class SingleSignOnAdapter(DefaultSocialAccountAdapter):
    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        refusal = sso_refusal(config=sso_config(), sociallogin=sociallogin)
        if refusal is not None:
            logger.warning(
                "Single sign-on refused for an address at %s: %s", email_domain(sociallogin), refusal.message
            )
            raise ImmediateHttpResponse(refused_page(request, refusal))

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        """Open to whoever pre_social_login let through (an allowed, verified address),
        whatever NEO_SIGNUP says: the operator chose the provider and the domains."""
        return True

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: str | None = None,
        exception: Exception | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> None:
        """A response allauth refused (state, the code exchange, the ID token's signature,
        issuer, audience or expiry): logged by kind, without the response's contents."""
        reason = {
            AuthError.CANCELLED: "You cancelled the sign-in at the provider.",
            AuthError.DENIED: "The sign-in provider refused the sign-in.",
        }.get(
            error or "",
            "The sign-in response could not be accepted (it may be stale, replayed, or meant for another site). "
            "Please start again.",
        )
        if exception is not None:
            kind = f"{type(exception).__name__}: {str(exception)[:120]}"
        elif extra_context is not None and "state_id" in extra_context:
            kind = "unknown, used or expired state"
        else:
            kind = error or AuthError.UNKNOWN
        logger.warning("Single sign-on response refused: %s", kind)
        if error != AuthError.CANCELLED:
            raise ImmediateHttpResponse(refused_page(request, SsoRefusal(reason)))


def membership_from_sign_on(*, user: AbstractBaseUser, rule: DomainRule) -> Membership:
    """The user's membership of the domain's organization, made with the domain's role on
    the first sign-in; an existing membership keeps the role an owner gave it."""
    organization = Organization.objects.get(slug=rule.organization_slug)
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, organization=organization, defaults={"role": rule.role}
        )
        if created:
            audit.record(
                organization=organization,
                action="member.join",
                target=membership,
                target_label=str(user.get_username()),
                actor=user,
                after={"role": rule.role, "by": "single sign-on"},
            )
    if created:
        logger.info("User %s joined organization %s as %s by single sign-on", user.pk, organization.pk, rule.role)
    return cast(Membership, membership)


@receiver(user_logged_in)
def join_organization_on_sign_on(
    sender: Any, request: HttpRequest, user: AbstractBaseUser, sociallogin: SocialLogin | None = None, **kwargs: Any
) -> None:
    """After a sign-in through the provider: join the domain's organization and act in it."""
    config = sso_config()
    if sociallogin is None or config is None or sociallogin.account.provider != PROVIDER_ID:
        return
    _, profile = identity_claims(sociallogin)
    rule = config.rule_for(str(profile.get("email") or ""))
    if rule is None:  # pre_social_login refused these already
        return
    membership = membership_from_sign_on(user=user, rule=rule)
    request.session[CURRENT_ORGANIZATION_KEY] = membership.organization_id
