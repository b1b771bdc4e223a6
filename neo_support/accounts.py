"""Staff accounts on django-allauth: who may sign up (NEO_SIGNUP), signing up from an
invitation link, and the two-factor rules an organization sets.

allauth runs the flows (sign-in, sign-up, verification, password reset, TOTP, sessions);
this module only answers the questions it asks through its adapters, its sign-up form
and one login stage (settings: ACCOUNT_ADAPTER, ACCOUNT_FORMS, MFA_ADAPTER)."""

from __future__ import annotations

import logging
import smtplib
from typing import Any, TypeVar, cast

from allauth.account import stages
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import SignupForm
from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from neo_support.models import Invitation, Membership
from neo_support.services import TeamError, invitation_accept, invitation_refusal

logger = logging.getLogger(__name__)

# The session key holding the token of the invitation this visitor is signing up from.
INVITATION_SESSION_KEY = "neo_signup_invitation"


# The invitation a visitor signs up from -------------------------------------------------


def invitation_remember(request: HttpRequest, invitation: Invitation) -> None:
    """Let this browser sign up from `invitation` (its link was opened, signed out)."""
    request.session[INVITATION_SESSION_KEY] = invitation.token


def invitation_forget(request: HttpRequest) -> None:
    request.session.pop(INVITATION_SESSION_KEY, None)


def invitation_remembered(request: HttpRequest) -> Invitation | None:
    """The invitation this browser is signing up from, whatever its state; None if none."""
    token = request.session.get(INVITATION_SESSION_KEY)
    if not isinstance(token, str):
        return None
    return cast(
        "Invitation | None",
        Invitation.objects.select_related("organization", "invited_by").filter(token=token).first(),
    )


def invitation_pending(request: HttpRequest) -> Invitation | None:
    """The invitation this browser is signing up from, while it can still be accepted."""
    invitation = invitation_remembered(request)
    return invitation if invitation is not None and invitation.is_pending else None


def invitation_email_has_account(invitation: Invitation) -> bool:
    """Whether the invited address already belongs to an account (which then logs in)."""
    email = invitation.email
    return bool(
        get_user_model().objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    )


def invitation_refused_page(request: HttpRequest, invitation: Invitation | None, reason: str) -> HttpResponse:
    """The invitation page saying why its link cannot be used (unknown 404, used or expired
    410, else 400). The refusal is logged without the link's token."""
    if invitation is None:
        logger.warning("Invitation link refused: %s", reason)
    else:
        logger.warning(
            "Invitation %s to organization %s refused: %s", invitation.pk, invitation.organization_id, reason
        )
    status = 404 if invitation is None else 410 if invitation.accepted_at or invitation.is_expired else 400
    response = render(request, "dashboard/invitation.html", {"invitation": invitation, "error": reason}, status=status)
    return quietly(response)


_Response = TypeVar("_Response", bound=HttpResponseBase)


def quietly(response: _Response) -> _Response:
    """Keep Django's request logger from writing this error response's path, which carries
    a secret (an invitation's or a verification link's token): the caller logs the
    refusal itself, without it."""
    response._has_been_logged = True  # Django's own flag (django.utils.log.log_response)
    return response


# Accounts -------------------------------------------------------------------------------


def admitted_without_verification(user: AbstractBaseUser) -> bool:
    """Accounts whose address needs no emailed proof: ones an operator made (staff, or made
    in Django admin, by `manage.py` or the setup page, which leaves no address on file) and
    members (an invitation's link proved the address, or an operator added them). An open
    sign-up always has an address on file, and no membership before it has signed in,
    which it cannot do until that address is verified."""
    return (
        bool(getattr(user, "is_staff", False))
        or not EmailAddress.objects.filter(user_id=user.pk).exists()
        or Membership.objects.filter(user=user).exists()
    )


class EmailVerificationStage(stages.EmailVerificationStage):
    """allauth's stage, which holds a sign-in until the address is verified (with open
    sign-up), except for accounts admitted another way (admitted_without_verification)."""

    def handle(self) -> tuple[Any, bool]:
        user = self.login.user
        if user is not None and not self.login.signup and admitted_without_verification(user):
            return None, True
        return cast("tuple[Any, bool]", super().handle())


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "username_password_mismatch": "Your username and password didn't match. Please try again.",
        "email_password_mismatch": "Your email address and password didn't match. Please try again.",
        "too_many_login_attempts": (
            "Too many failed sign-in attempts for this account or from your network. "
            "Wait five minutes and try again, or reset your password."
        ),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        """closed: never. invite: from a pending invitation's link only. open: anyone.
        A visitor holding an invitation that can no longer be used is told why."""
        if settings.NEO_SIGNUP == "closed":
            raise ImmediateHttpResponse(signup_closed(request))
        if request.session.get(INVITATION_SESSION_KEY):
            invitation = invitation_remembered(request)
            refusal = invitation_refusal(invitation=invitation, user=None)
            if refusal is not None:  # used, expired, revoked or replaced since the link was opened
                invitation_forget(request)
                raise ImmediateHttpResponse(invitation_refused_page(request, invitation, refusal))
            return True
        if settings.NEO_SIGNUP == "invite":
            raise ImmediateHttpResponse(signup_closed(request))
        return True

    def save_user(
        self, request: HttpRequest, user: AbstractBaseUser, form: BaseForm, commit: bool = True
    ) -> AbstractBaseUser:
        """Create the account; signing up from an invitation also accepts it, in the same
        transaction, so a refused invitation leaves no account behind, and the invited
        address counts as verified (its link reached it)."""
        invitation = invitation_remembered(request)
        if invitation is None:
            return cast(AbstractBaseUser, super().save_user(request, user, form, commit))
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=True)
            try:
                membership = invitation_accept(token=invitation.token, user=user)
            except TeamError as error:
                raise ImmediateHttpResponse(invitation_refused_page(request, invitation, str(error))) from None
        invitation_forget(request)
        self.stash_verified_email(request, invitation.email)  # allauth's hook for exactly this
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return user

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        """allauth's emails (verification, password reset); a mail server that cannot be
        reached is said on the page and logged (without the message, which holds a link)
        rather than a 500 after the account or the request was already saved."""
        try:
            super().send_mail(template_prefix, email, context)
        except (OSError, smtplib.SMTPException) as error:
            logger.error("Could not send the %s email: %s", template_prefix.rsplit("/", 1)[-1], error)
            if self.request is not None:
                messages.error(self.request, "The email could not be sent just now. Try again in a few minutes.")

    def get_login_stages(self) -> list[str]:
        return [
            "neo_support.accounts.EmailVerificationStage" if path.endswith(".EmailVerificationStage") else path
            for path in super().get_login_stages()
        ]

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            # Who was tried is left out: a mistyped password in the name field is a secret.
            logger.warning("Sign-in throttled: too many failed attempts (from %s)", self.get_client_ip(request))
            raise


def signup_closed(request: HttpRequest) -> HttpResponse:
    """The sign-up page when NEO_SIGNUP allows none here: closed, or invite without one."""
    return render(request, "account/signup_closed.html", {"signup_mode": settings.NEO_SIGNUP}, status=403)


class SignUpForm(SignupForm):
    """allauth's sign-up form; from an invitation, its email is the invited address and
    cannot be changed (that address is the one the link proved)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = context.request
        invitation = invitation_pending(request) if request is not None else None
        self.invitation = invitation
        if invitation is not None:
            email = self.fields["email"]
            email.initial = invitation.email
            email.disabled = True
            email.help_text = "The address you were invited at."


# Two-factor -------------------------------------------------------------------------------


def two_factor_required(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether an organization of `user` makes TOTP mandatory for its members."""
    if not user.is_authenticated:
        return False
    return cast(bool, Membership.objects.filter(user=user, organization__require_two_factor=True).exists())


def has_totp(user: AbstractBaseUser | AnonymousUser) -> bool:
    if not user.is_authenticated:
        return False
    return cast(bool, Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.TOTP).exists())


class MfaAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": "Your organization requires two-factor authentication: it stays on.",
    }

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """A member of an organization that requires two-factor keeps their TOTP."""
        if authenticator.type == Authenticator.Type.TOTP and two_factor_required(authenticator.user):
            return False
        return cast(bool, super().can_delete_authenticator(authenticator))
