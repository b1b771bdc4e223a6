"""Who may create an account (NEO_SIGNUP): closed (nobody), invite (from an invitation's
link only; the default) and open (anyone, once the emailed link proves the address). An
invited address without an account signs up from its link and joins at once; a used,
expired or revoked invitation and a used or expired verification link are refused with
a clear message, create nothing, and are logged without their secret."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from neo_support.models import Invitation, Membership
from neo_support.services import invitation_create
from tests.conftest import Inbox, clean_env, free_port, run_manage
from tests.factories import MembershipFactory, UserFactory
from tests.neo_support.accounts_support import (
    PASSWORD,
    page,
    sign_in,
    signed_in_user_id,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]

User = get_user_model()
NEW_ACCOUNT = {"username": "sam", "password1": "a sturdy tent 42", "password2": "a sturdy tent 42"}


@pytest.fixture
def open_signup(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEO_SIGNUP = "open"
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"  # what settings.py derives from NEO_SIGNUP=open


@pytest.fixture
def invitation(organization) -> Invitation:  # type: ignore[no-untyped-def]
    owner = MembershipFactory(organization=organization, role="owner", user__username="olga")
    return invitation_create(organization=organization, email="Sam@Example.com", role="agent", invited_by=owner.user)


def link(invitation: Invitation) -> str:
    return f"/dashboard/invitations/{invitation.token}/"


def logged(caplog) -> str:  # type: ignore[no-untyped-def]
    """Everything logged, records' fields included (where a request's path would show)."""
    return caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)


def test_a_bad_sign_up_mode_stops_start_up_naming_it(tmp_path: Path) -> None:
    result = run_manage("check", env=clean_env(NEO_VAR_DIR=str(tmp_path), NEO_SIGNUP="sometimes"))
    assert result.returncode == 2
    assert "Configuration error: NEO_SIGNUP: expected one of closed, invite, open, got 'sometimes'" in result.stderr


# invite (the default) ---------------------------------------------------------------------------


def test_by_default_there_is_no_sign_up_without_an_invitation(client, settings) -> None:
    assert settings.NEO_SIGNUP == "invite"
    response = client.get("/accounts/signup/")
    assert response.status_code == 403 and "created from an invitation" in response.content.decode()
    assert client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"}).status_code == 403
    assert not User.objects.filter(username="sam").exists()
    assert "Create one" not in client.get("/accounts/login/").content.decode()


def test_an_invited_address_without_an_account_signs_up_from_the_link_and_joins(client, invitation) -> None:
    invited = page(client.get(link(invitation)))
    assert invited.xpath("//a[@href='/accounts/signup/']/text()") == ["Create your account"]

    form = page(client.get("/accounts/signup/"))
    email = form.get_element_by_id("id_email")
    assert email.value == "sam@example.com" and email.get("disabled") is not None
    assert invitation.organization.name in form.text_content()

    # A changed address in the post is ignored: the invited one is the one the link proved.
    response = client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "someone@else.example"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    sam = User.objects.get(username="sam")
    assert sam.email == "sam@example.com" and signed_in_user_id(client) == str(sam.pk)
    assert EmailAddress.objects.filter(user=sam, email="sam@example.com", verified=True, primary=True).exists()
    assert Membership.objects.get(user=sam).role == "agent"
    invitation.refresh_from_db()
    assert invitation.accepted_by == sam and invitation.accepted_at is not None
    assert mail.outbox == []  # nothing to verify
    assert f"Welcome to {invitation.organization.name}" in client.get("/dashboard/").content.decode()


def test_a_used_invitation_link_is_refused_and_creates_nothing(client, invitation, caplog) -> None:
    client.get(link(invitation))
    client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"})
    users = User.objects.count()
    caplog.set_level(logging.DEBUG)

    stranger = Client()
    response = stranger.get(link(invitation))
    assert response.status_code == 410 and "already been used" in response.content.decode()
    assert stranger.get("/accounts/signup/").status_code == 403  # nothing was remembered
    assert stranger.post("/accounts/signup/", {**NEW_ACCOUNT, "username": "sam2"}).status_code == 403
    assert User.objects.count() == users
    assert f"Invitation {invitation.pk} to organization {invitation.organization_id} refused" in caplog.text
    assert invitation.token not in logged(caplog)


def test_two_browsers_on_one_link_make_one_account(invitation) -> None:
    first, second = Client(), Client()
    first.get(link(invitation))
    second.get(link(invitation))
    assert first.post("/accounts/signup/", NEW_ACCOUNT).status_code == 302

    response = second.post("/accounts/signup/", {**NEW_ACCOUNT, "username": "sam2"})
    assert response.status_code == 410 and "already been used" in response.content.decode()
    assert list(User.objects.filter(username__startswith="sam").values_list("username", flat=True)) == ["sam"]
    assert Membership.objects.filter(organization=invitation.organization, user__username="sam").count() == 1


def test_an_invitation_that_expires_before_the_form_is_sent_creates_nothing(client, invitation, caplog) -> None:
    client.get(link(invitation))
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    caplog.set_level(logging.DEBUG)

    response = client.post("/accounts/signup/", NEW_ACCOUNT)
    assert response.status_code == 410 and "This invitation has expired" in response.content.decode()
    assert not User.objects.filter(username="sam").exists()
    assert client.get(link(invitation)).status_code == 410
    assert "refused: This invitation has expired" in caplog.text
    assert invitation.token not in logged(caplog)


def test_a_revoked_invitation_stops_its_sign_up_too(client, invitation) -> None:
    client.get(link(invitation))
    invitation.delete()
    response = client.post("/accounts/signup/", NEW_ACCOUNT)
    assert response.status_code == 404 and "not valid" in response.content.decode()
    assert not User.objects.filter(username="sam").exists()
    assert client.get("/accounts/signup/").status_code == 403  # and the browser forgot it


def test_an_invited_address_with_an_account_logs_in_to_accept(client, invitation) -> None:
    UserFactory(username="sammy", email="sam@example.com")
    response = client.get(link(invitation))
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={link(invitation)}"
    assert client.get("/accounts/signup/").status_code == 403


# closed -----------------------------------------------------------------------------------------


def test_closed_means_no_sign_up_even_from_an_invitation(client, settings, invitation) -> None:
    settings.NEO_SIGNUP = "closed"
    response = client.get("/accounts/signup/")
    assert response.status_code == 403 and "does not create accounts by sign-up" in response.content.decode()
    response = client.get(link(invitation))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/accounts/signup/").status_code == 403
    assert client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"}).status_code == 403
    assert not User.objects.filter(username="sam").exists()


# open ---------------------------------------------------------------------------------------------


def sign_up_openly(client: Client, smtp: Inbox) -> str:
    """Sign up as sam@example.com; returns the verification link's path from the email."""
    response = client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"})
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/", response.content[:300]
    assert smtp.arrived.wait(10)
    [email] = smtp.messages
    assert email["To"] == "sam@example.com" and email["Subject"] == "[Neo Support] Confirm your email address"
    found = re.search(r"http://testserver(/accounts/confirm-email/[-:\w]+/)", email.get_content())
    assert found, email.get_content()
    return found.group(1)


@pytest.mark.usefixtures("open_signup")
def test_open_sign_up_holds_the_account_until_the_emailed_link_confirms_the_address(client, smtp) -> None:
    assert "Create one" in client.get("/accounts/login/").content.decode()
    verify = sign_up_openly(client, smtp)
    sam = User.objects.get(username="sam")
    assert signed_in_user_id(client) is None
    assert "Confirm your email address" in client.get("/accounts/confirm-email/").content.decode()

    held = Client()
    assert sign_in(held, "sam", "a sturdy tent 42")["Location"] == "/accounts/confirm-email/"
    assert signed_in_user_id(held) is None

    confirm = client.get(verify)
    assert confirm.status_code == 200 and "sam@example.com" in confirm.content.decode()
    response = client.post(verify)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert EmailAddress.objects.get(user=sam).verified

    assert sign_in(Client(), "sam", "a sturdy tent 42").status_code == 302
    assert not Membership.objects.filter(user=sam).exists()  # an account, in no organization yet


@pytest.mark.usefixtures("open_signup")
def test_a_used_verification_link_is_refused_and_logged_without_its_key(client, smtp, caplog) -> None:
    verify = sign_up_openly(client, smtp)
    client.post(verify)
    caplog.set_level(logging.DEBUG)

    again = Client()
    response = again.get(verify)
    assert response.status_code == 410 and "has already been used" in text(response)
    assert again.post(verify).status_code == 410
    assert "Email verification link refused: already used" in caplog.text
    key = verify.rstrip("/").rsplit("/", 1)[1]
    assert key not in logged(caplog)


@pytest.mark.usefixtures("open_signup")
def test_an_expired_verification_link_is_refused_and_verifies_nothing(client, smtp, settings, caplog) -> None:
    verify = sign_up_openly(client, smtp)
    settings.ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 0
    caplog.set_level(logging.DEBUG)

    response = client.post(verify)
    assert response.status_code == 410 and "has expired" in text(response)
    assert not EmailAddress.objects.get(email="sam@example.com").verified
    assert "Email verification link refused: expired" in caplog.text
    assert verify.rstrip("/").rsplit("/", 1)[1] not in logged(caplog)


@pytest.mark.usefixtures("open_signup")
def test_a_forged_verification_link_is_refused(client) -> None:
    response = client.get("/accounts/confirm-email/MQ:1t0000:forged/")
    assert response.status_code == 410 and "cannot be used" in text(response)


@pytest.mark.usefixtures("open_signup")
def test_open_sign_up_leaves_accounts_made_by_an_operator_or_an_invitation_signing_in(client, invitation) -> None:
    MembershipFactory(user__username="olaf")  # made in admin or by manage.py: no address on file
    assert sign_in(Client(), "olaf").status_code == 302
    UserFactory(username="nomad")  # in no organization yet
    assert sign_in(Client(), "nomad").status_code == 302

    client.get(link(invitation))
    assert client.post("/accounts/signup/", NEW_ACCOUNT)["Location"] == "/dashboard/"  # the link proved it
    assert signed_in_user_id(client) == str(User.objects.get(username="sam").pk)


@pytest.mark.usefixtures("open_signup")
def test_an_address_taken_already_gets_no_second_account(client, smtp) -> None:
    UserFactory(username="first", email="sam@example.com")
    response = client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"})
    assert response.status_code == 302  # the same answer as a new address: no one learns who has an account
    assert not User.objects.filter(username="sam").exists()
    assert sign_in(Client(), "first", PASSWORD).status_code == 302


@pytest.mark.usefixtures("open_signup")
def test_a_mail_server_that_cannot_be_reached_is_said_not_a_server_error(client, settings, caplog) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    response = client.post("/accounts/signup/", {**NEW_ACCOUNT, "email": "sam@example.com"}, follow=True)
    assert response.status_code == 200
    assert "The email could not be sent just now" in text(response)
    assert "Could not send the email_confirmation_signup email" in caplog.text
