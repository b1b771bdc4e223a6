"""TOTP two-factor for staff accounts (allauth.mfa): turning it on, signing in with a code,
replayed and out-of-window codes refused, recovery codes that work once, and an
organization whose owner makes it mandatory: its members are sent to set it up first."""

from __future__ import annotations

import pytest
from django.test import Client

from neo_support.models import Organization
from tests.factories import MembershipFactory
from tests.neo_support.accounts_support import (
    PASSWORD,
    enable_totp,
    page,
    reauthenticate,
    sign_in,
    signed_in_user_id,
    totp_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]


@pytest.fixture
def dana():  # type: ignore[no-untyped-def]
    return MembershipFactory(user__username="dana", user__email="dana@acme.example", role="owner")


def with_totp(membership, clock) -> str:  # type: ignore[no-untyped-def]
    """Sign in with the password, turn on TOTP, sign out; returns the secret."""
    client = Client()
    assert sign_in(client, membership.user.username).status_code == 302
    secret = enable_totp(client, clock)
    return secret


def test_turning_it_on_needs_the_password_again_and_a_correct_code_from_the_app(client, dana, clock) -> None:
    sign_in(client, "dana")
    response = client.get("/accounts/2fa/totp/activate/")
    assert response["Location"] == "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    assert client.post(response["Location"], {"password": "wrong"}).status_code == 200
    assert client.post(response["Location"], {"password": PASSWORD})["Location"] == "/accounts/2fa/totp/activate/"
    response = client.get("/accounts/2fa/totp/activate/")
    secret = page(response).get_element_by_id("authenticator-secret").value
    assert page(response).xpath("//img[starts-with(@src, 'data:image/svg+xml;base64,')]")  # the QR code

    wrong = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret, at=clock.now, steps=3)})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    assert not dana.user.authenticator_set.exists()

    right = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret, at=clock.now)})
    assert right.status_code == 302
    assert set(dana.user.authenticator_set.values_list("type", flat=True)) == {"totp", "recovery_codes"}
    assert "On" in client.get("/accounts/").content.decode()


def test_signing_in_then_asks_for_the_code_and_a_good_one_lets_you_in(dana, clock) -> None:
    secret = with_totp(dana, clock)
    clock.now += 60  # a later sign-in, two steps on
    client = Client()

    response = sign_in(client, "dana")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert signed_in_user_id(client) is None  # the password alone signs no one in
    assert client.get("/dashboard/")["Location"].startswith("/accounts/login/")

    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, at=clock.now)})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert signed_in_user_id(client) == str(dana.user.pk)
    assert client.get("/dashboard/").status_code == 200


def test_a_code_already_used_is_refused_within_its_step(dana, clock) -> None:
    secret = with_totp(dana, clock)
    clock.now += 60
    code = totp_code(secret, at=clock.now)
    first = Client()
    sign_in(first, "dana")
    assert first.post("/accounts/2fa/authenticate/", {"code": code}).status_code == 302

    clock.now += 15  # the same step still: the code is valid by the clock, but spent
    replay = Client()
    sign_in(replay, "dana")
    response = replay.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert signed_in_user_id(replay) is None


@pytest.mark.parametrize("steps", [-2, -1, 1, 2])
def test_a_code_of_another_step_is_refused(dana, clock, steps: int) -> None:
    secret = with_totp(dana, clock)
    clock.now += 120
    client = Client()
    sign_in(client, "dana")
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret, at=clock.now, steps=steps)})
    assert response.status_code == 200 and "Incorrect code" in response.content.decode()
    assert signed_in_user_id(client) is None


def test_a_recovery_code_signs_in_once(dana, clock) -> None:
    client = Client()
    sign_in(client, "dana")
    enable_totp(client, clock)
    codes = page(client.get("/accounts/2fa/recovery-codes/")).xpath("//ul[@id='recovery-codes']/li/code/text()")
    assert len(codes) == 10

    lost_phone = Client()
    sign_in(lost_phone, "dana")
    assert lost_phone.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    assert signed_in_user_id(lost_phone) == str(dana.user.pk)

    again = Client()
    sign_in(again, "dana")
    response = again.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert response.status_code == 200 and signed_in_user_id(again) is None
    assert "9 of 10 codes unused" in client.get("/accounts/2fa/recovery-codes/").content.decode()


# Mandatory for an organization --------------------------------------------------------------


def require(membership, clock) -> None:  # type: ignore[no-untyped-def]
    """The organization's owner turns the requirement on from the settings page."""
    owner = Client()
    sign_in(owner, membership.user.username)
    enable_totp(owner, clock)
    response = owner.post("/dashboard/settings/", {"name": membership.organization.name, "require_two_factor": "on"})
    assert response.status_code == 302, response.content[:500]
    membership.organization.refresh_from_db()
    assert membership.organization.require_two_factor


def test_a_member_without_totp_is_sent_to_set_it_up_before_any_dashboard_page(dana, clock) -> None:
    require(dana, clock)
    agent = MembershipFactory(organization=dana.organization, role="agent", user__username="sam")
    client = Client()

    response = sign_in(client, "sam")
    assert response.status_code == 302 and signed_in_user_id(client) == str(agent.user.pk)
    for path in ("/dashboard/", "/dashboard/inbox/", "/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/", path
    api = client.get("/api/tickets/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "two_factor_required"
    assert client.get("/accounts/").status_code == 200  # the account pages stay open
    setup = client.get("/dashboard/", follow=True)  # to the setup, through the password check
    assert "requires two-factor authentication: set it up to continue" in setup.content.decode()

    enable_totp(client, clock)
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/api/tickets/").status_code == 200


def test_a_member_without_totp_can_still_sign_out(dana, clock) -> None:
    require(dana, clock)
    MembershipFactory(organization=dana.organization, role="viewer", user__username="vic")
    client = Client()
    sign_in(client, "vic")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and signed_in_user_id(client) is None


def test_while_it_is_required_totp_cannot_be_turned_off(dana, clock) -> None:
    require(dana, clock)
    clock.now += 30
    client = Client()
    sign_in(client, "dana")
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(_secret(dana), at=clock.now)})
    assert signed_in_user_id(client) == str(dana.user.pk)
    reauthenticate(client)
    response = client.post("/accounts/2fa/totp/deactivate/", {})
    assert response.status_code == 200 and "it stays on" in response.content.decode()
    assert dana.user.authenticator_set.filter(type="totp").exists()


def _secret(membership) -> str:  # type: ignore[no-untyped-def]
    return str(membership.user.authenticator_set.get(type="totp").data["secret"])


def test_only_an_owner_changes_the_requirement(dana, clock) -> None:
    admin = MembershipFactory(organization=dana.organization, role="admin", user__username="ada")
    client = Client()
    sign_in(client, "ada")
    enable_totp(client, clock)
    page_html = client.get("/dashboard/settings/").content.decode()
    assert "Only an owner can change this" in page_html
    checkbox = page(client.get("/dashboard/settings/")).get_element_by_id("id_require_two_factor")
    assert checkbox.get("disabled") is not None

    response = client.post("/dashboard/settings/", {"name": "Renamed", "require_two_factor": "on"})
    assert response.status_code == 302  # the name is theirs to change; the box is not
    organization = Organization.objects.get(pk=admin.organization_id)
    assert (organization.name, organization.require_two_factor) == ("Renamed", False)


def test_an_owner_turns_on_their_own_totp_before_requiring_it(client, dana) -> None:
    sign_in(client, "dana")
    response = client.post("/dashboard/settings/", {"name": dana.organization.name, "require_two_factor": "on"})
    assert response.status_code == 400
    assert "Turn on two-factor authentication for your own account first" in response.content.decode()
    dana.organization.refresh_from_db()
    assert not dana.organization.require_two_factor
