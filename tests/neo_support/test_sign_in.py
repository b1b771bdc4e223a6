"""Signing in and out through allauth: by username or email, throttled failed attempts
with a clear message, password reset by a real email (SMTP on loopback) whose link works
once, password change, Django admin's sign-in routed through ours, and the sessions page
where another browser is signed out."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import MembershipFactory, UserFactory
from tests.neo_support.accounts_support import (
    PASSWORD,
    enable_totp,
    page,
    sign_in,
    signed_in_user_id,
    text,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_cache")]


@pytest.fixture
def dana():  # type: ignore[no-untyped-def]
    return MembershipFactory(user__username="dana", user__email="dana@acme.example", role="agent").user


def test_the_sign_in_page_asks_for_a_username_or_email_and_a_password(client) -> None:
    form = page(client.get("/accounts/login/")).xpath("//form[@action='/accounts/login/']")[0]
    assert form.xpath(".//input[@name='login'][@id='id_login']")
    assert form.xpath(".//input[@name='password'][@type='password']")
    assert form.xpath(".//input[@name='csrfmiddlewaretoken']")


@pytest.mark.parametrize("login", ["dana", "dana@acme.example", "DANA@ACME.EXAMPLE"])
def test_a_member_signs_in_by_username_or_email(client, dana, login: str) -> None:
    response = sign_in(client, login)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert signed_in_user_id(client) == str(dana.pk)
    header = page(client.get("/dashboard/")).xpath("//header//a[text()='Account']/@href")
    assert header == ["/accounts/"]


def test_a_wrong_password_is_refused_with_a_message(client, dana) -> None:
    response = sign_in(client, "dana", "wrong")
    assert response.status_code == 200
    assert "Your username and password didn't match" in text(response)
    response = sign_in(client, "dana@acme.example", "wrong")
    assert "Your email address and password didn't match" in text(response)
    assert signed_in_user_id(client) is None


def test_the_next_page_is_kept_through_the_sign_in(client, dana) -> None:
    assert client.get("/dashboard/inbox/")["Location"] == "/accounts/login/?next=/dashboard/inbox/"
    response = client.post("/accounts/login/?next=/dashboard/inbox/", {"login": "dana", "password": PASSWORD})
    assert response["Location"] == "/dashboard/inbox/"


# Throttling ---------------------------------------------------------------------------------


def test_five_failed_attempts_on_one_account_lock_it_for_a_while_with_a_clear_message(client, dana, caplog) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        assert "didn't match" in text(sign_in(client, "dana", "guess"))

    response = sign_in(client, "dana")  # even the right password waits now
    assert response.status_code == 200 and signed_in_user_id(client) is None
    assert "Too many failed sign-in attempts for this account" in response.content.decode()
    assert "Sign-in throttled" in caplog.text
    assert "guess" not in caplog.text and PASSWORD not in caplog.text

    other = MembershipFactory(user__username="eli").user
    assert sign_in(Client(), other.username).status_code == 302  # other accounts are not held up


def test_ten_failed_attempts_from_one_address_hold_up_any_account_from_it(client, dana) -> None:
    for number in range(10):
        sign_in(client, f"nobody{number}", "guess")
    response = sign_in(client, "dana")
    assert "Too many failed sign-in attempts" in response.content.decode()
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert sign_in(elsewhere, "dana").status_code == 302


def test_a_flood_of_sign_in_posts_from_one_address_gets_a_429_page(client, dana, caplog) -> None:
    for _ in range(30):
        sign_in(client, "dana")
    response = sign_in(client, "dana")
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert "Throttled: too many requests to account_login" in caplog.text


def test_a_successful_sign_in_does_not_count_as_a_failure(client, dana) -> None:
    for _ in range(4):
        sign_in(client, "dana", "guess")
    for _ in range(3):
        assert sign_in(Client(), "dana").status_code == 302
    assert "didn't match" in text(sign_in(client, "dana", "guess"))  # the fifth failure


# Signing out, passwords -----------------------------------------------------------------------


def test_signing_out_takes_a_post(client, dana) -> None:
    sign_in(client, "dana")
    assert client.get("/accounts/logout/").status_code == 405
    assert signed_in_user_id(client) == str(dana.pk)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert signed_in_user_id(client) is None


def test_a_forgotten_password_is_reset_by_an_emailed_link_that_works_once(client, dana, smtp) -> None:
    response = client.post("/accounts/password/reset/", {"email": "dana@acme.example"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/done/"
    assert smtp.arrived.wait(10)
    [email] = smtp.messages
    assert email["To"] == "dana@acme.example" and "Password Reset" in email["Subject"]
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", email.get_content())
    assert link, email.get_content()

    form_page = client.get(link.group(1), follow=True)
    assert "Choose a new password" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    new = {"password1": "a new tent pole 42", "password2": "a new tent pole 42"}
    assert client.post(set_url, new).status_code == 302
    assert sign_in(Client(), "dana", "a new tent pole 42").status_code == 302
    assert "didn't match" in text(sign_in(Client(), "dana", PASSWORD))

    again = Client().get(link.group(1), follow=True)
    assert "The password reset link has expired or has already been used" in again.content.decode()


def test_a_reset_for_an_unknown_address_tells_nothing_away(client, smtp) -> None:
    response = client.post("/accounts/password/reset/", {"email": "who@nowhere.example"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/done/"


def test_a_member_changes_their_password(client, dana) -> None:
    sign_in(client, "dana")
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "a new tent pole 42", "password2": "a new tent pole 42"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.get(pk=dana.pk).check_password("a new tent pole 42")
    assert signed_in_user_id(client) == str(dana.pk)  # this browser stays signed in


def test_django_admin_signs_in_through_our_sign_in_page(client) -> None:
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=%2Fadmin%2F"
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    sign_in(client, superuser.username)
    assert client.get("/admin/").status_code == 200


# Sessions ---------------------------------------------------------------------------------------


def test_the_sessions_page_lists_the_browsers_and_signs_another_one_out(dana) -> None:
    laptop = Client(HTTP_USER_AGENT="Laptop Firefox")
    phone = Client(HTTP_USER_AGENT="Phone Safari", REMOTE_ADDR="198.51.100.9")
    sign_in(laptop, "dana")
    sign_in(phone, "dana")

    listing = page(laptop.get("/accounts/sessions/"))
    rows = listing.xpath("//table[@id='sessions']/tbody/tr")
    assert [row.xpath("string(td[3])") for row in rows] == ["Laptop Firefox", "Phone Safari"]
    assert rows[0].xpath("string(td[4])").strip() == "this browser"
    end = rows[1].xpath(".//form/@action")[0]

    response = laptop.post(end)
    assert response.status_code == 302 and response["Location"] == "/accounts/sessions/"
    assert "198.51.100.9 is signed out" in laptop.get("/accounts/sessions/").content.decode()
    assert phone.get("/dashboard/")["Location"].startswith("/accounts/login/")
    assert laptop.get("/dashboard/").status_code == 200


def test_all_other_sessions_are_signed_out_at_once(dana) -> None:
    browsers = [Client(HTTP_USER_AGENT=f"Browser {number}") for number in range(3)]
    for browser in browsers:
        sign_in(browser, "dana")
    assert browsers[0].post("/accounts/sessions/").status_code == 302
    assert browsers[0].get("/dashboard/").status_code == 200
    for browser in browsers[1:]:
        assert browser.get("/dashboard/")["Location"].startswith("/accounts/login/")


def test_changing_the_password_signs_the_other_browsers_out(dana) -> None:
    here, there = Client(), Client()
    sign_in(here, "dana")
    sign_in(there, "dana")
    new = {"oldpassword": PASSWORD, "password1": "a new tent pole 42", "password2": "a new tent pole 42"}
    assert here.post("/accounts/password/change/", new).status_code == 302
    assert here.get("/dashboard/").status_code == 200
    assert there.get("/dashboard/")["Location"].startswith("/accounts/login/")


def test_another_users_session_cannot_be_ended(dana) -> None:
    theirs = Client()
    sign_in(theirs, MembershipFactory(user__username="eli").user.username)
    mine = Client()
    sign_in(mine, "dana")
    from allauth.usersessions.models import UserSession

    their_session = UserSession.objects.get(user__username="eli")
    assert mine.post(f"/accounts/sessions/{their_session.pk}/end").status_code == 404
    assert theirs.get("/dashboard/").status_code == 200


# Every page --------------------------------------------------------------------------------------

SIGNED_OUT_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/password/reset/key/done/",
    "/accounts/confirm-email/",
    "/accounts/inactive/",
]
SIGNED_IN_PAGES = [
    "/accounts/",
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/reauthenticate/",
    "/accounts/sessions/",
    "/accounts/2fa/",
    "/accounts/2fa/totp/deactivate/",
    "/accounts/2fa/recovery-codes/",
    "/accounts/2fa/recovery-codes/generate/",
    "/accounts/2fa/reauthenticate/",
]


def test_every_account_page_is_drawn_in_the_dashboards_layout(client, dana, clock) -> None:
    def check(path: str) -> None:
        response = client.get(path)
        assert response.status_code in (200, 403), (path, response.status_code, response.get("Location"))
        drawn = page(response)
        assert drawn.xpath("//header[@class='topbar']") and drawn.xpath("//main//h1"), path
        assert "Menu:" not in text(response), path  # allauth's own bare layout

    for path in SIGNED_OUT_PAGES:
        check(path)
    sign_in(client, "dana")
    enable_totp(client, clock)
    for path in SIGNED_IN_PAGES:
        check(path)
