"""A second person joins in a real headless Chromium: the owner invites them (the email
goes through SMTP on loopback), they sign up from the link, turn on TOTP with the secret
the page shows, and sign in again with their password and a code. A third signs in
through the company's OpenID provider (a real one, in its own process) and lands in the
organization and role its email domain is given; an address at another domain is refused.

With NEO_SCREENSHOTS=1 it saves the sign-up, 2FA setup, 2FA sign-in and single sign-on pages
to docs/screenshots/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from neo_support.models import Membership
from tests.conftest import Inbox
from tests.factories import MembershipFactory, OrganizationFactory
from tests.neo_support.accounts_support import PASSWORD, totp_code, wait_for_a_fresh_step
from tests.neo_support.sso_support import CALLBACK_PATH, oidc_provider, sso_config, use_sso

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMS_PASSWORD = "a sturdy tent 42"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if os.environ.get("NEO_SCREENSHOTS") == "1":
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_an_invited_colleague_signs_up_turns_on_totp_and_signs_in_with_a_code(live_server, page, settings) -> None:
    smtp = Inbox()
    smtp.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    base = live_server.url
    try:
        owner = MembershipFactory(user__username="olga", role="owner", organization__name="Tallyho")

        # The owner invites sam by email.
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_login", "olga")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/dashboard/")
        page.goto(f"{base}/dashboard/team/")
        page.fill("#id_email", "sam@tallyho.example")
        page.select_option("#id_role", "agent")
        page.click("button:text-is('Send invitation')")
        page.wait_for_selector("text=Invitation sent to sam@tallyho.example")
        assert smtp.arrived.wait(10)
        found = re.search(r"http://\S+/dashboard/invitations/[\w-]+/", smtp.messages[0].get_content())
        assert found, smtp.messages[0].get_content()
        page.click("button:text-is('Log out')")
        page.wait_for_url(f"{base}/accounts/login/")

        # Sam opens the link, signs up with the invited address, and is in.
        page.goto(found.group(0))
        assert "Join Tallyho" in page.locator("h1").inner_text()
        page.click("a:text-is('Create your account')")
        assert page.input_value("#id_email") == "sam@tallyho.example"
        assert page.is_disabled("#id_email")
        page.fill("#id_username", "sam")
        page.fill("#id_password1", SAMS_PASSWORD)
        page.fill("#id_password2", SAMS_PASSWORD)
        shot(page, "sign-up.png")
        page.click("button:text-is('Create account')")
        page.wait_for_url(f"{base}/dashboard/")
        assert page.locator("h1").inner_text() == "Tallyho"
        assert page.get_by_text("Welcome to Tallyho.").is_visible()
        assert Membership.objects.get(user__username="sam").organization_id == owner.organization_id

        # Sam turns on two-factor from the Account page, with the secret the page shows.
        page.click("header >> text=Account")
        page.click("#two-factor-status >> text=Manage")
        page.click("text=Turn on")
        page.fill("#id_password", SAMS_PASSWORD)  # allauth asks for the password before 2FA changes
        page.click("button:text-is('Confirm')")
        secret = page.input_value("#authenticator-secret")
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)
        shot(page, "two-factor-setup.png")
        wait_for_a_fresh_step()
        page.fill("#id_code", totp_code(secret))
        page.click("button:text-is('Turn on')")
        page.wait_for_url(f"{base}/accounts/2fa/recovery-codes/")
        assert page.locator("#recovery-codes li").count() == 10
        page.click("button:text-is('Log out')")
        page.wait_for_url(f"{base}/accounts/login/")

        # Signing in now takes the password and a code from the app.
        page.fill("#id_login", "sam@tallyho.example")
        page.fill("#id_password", SAMS_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/accounts/2fa/authenticate/")
        shot(page, "two-factor-sign-in.png")
        page.fill("#id_code", "000000" if totp_code(secret) != "000000" else "111111")
        page.click("button:text-is('Log in')")
        assert "Incorrect code" in page.get_by_role("alert").inner_text()
        wait_for_a_fresh_step()
        page.fill("#id_code", totp_code(secret, steps=1))  # the next step's code: not yet
        page.click("button:text-is('Log in')")
        assert page.url == f"{base}/accounts/2fa/authenticate/"
        page.fill("#id_code", totp_code(secret))
        page.click("button:text-is('Log in')")
        page.wait_for_url(f"{base}/dashboard/")
        assert "sam" in page.locator("header").inner_text()
    finally:
        smtp.controller.stop()


def test_a_third_colleague_signs_in_through_the_companys_provider_and_lands_in_its_organization(
    live_server, page, settings, tmp_path
) -> None:
    base = live_server.url
    tallyho = OrganizationFactory(name="Tallyho", slug="tallyho")
    OrganizationFactory(name="Elsewhere Inc", slug="elsewhere")
    users = {
        "ida": {"password": "ida at the IdP 42", "email": "ida@tallyho.example", "name": "Ida Lind"},
        "eve": {"password": "eve at the IdP 42", "email": "eve@gmail.example"},
    }
    with oidc_provider(tmp_path, redirect_uris=[f"{base}{CALLBACK_PATH}"], users=users) as provider:
        use_sso(settings, sso_config(provider, "tallyho.example=tallyho:agent", name="Tallyho Login"))

        # Ida presses the provider's button, signs in there, and is back in Tallyho as an agent.
        page.goto(f"{base}/accounts/login/")
        shot(page, "sign-in-sso.png")
        page.click("button:text-is('Log in with Tallyho Login')")
        page.wait_for_selector("#provider-username")
        assert page.url.startswith(f"{provider.origin}/login/"), page.url
        page.fill("#provider-username", "ida")
        page.fill("#provider-password", users["ida"]["password"])
        page.click("button:text-is('Sign in to Example IdP')")
        page.wait_for_url(f"{base}/dashboard/")
        assert page.locator("h1").inner_text() == "Tallyho"
        membership = Membership.objects.get(user__email="ida@tallyho.example")
        assert (membership.organization, membership.role) == (tallyho, "agent")
        assert page.get_by_text("You are agent here").is_visible()
        assert page.locator("header a:text-is('Team')").count() == 0  # an agent's view
        page.click("button:text-is('Log out')")
        page.wait_for_url(f"{base}/accounts/login/")

        # Eve's address is not at an allowed domain: refused, and no account is made. (She
        # uses another computer: this browser is still signed in at the provider as Ida.)
        page.context.clear_cookies()
        page.goto(f"{base}/accounts/login/")
        page.click("button:text-is('Log in with Tallyho Login')")
        page.fill("#provider-username", "eve")
        page.fill("#provider-password", users["eve"]["password"])
        page.click("button:text-is('Sign in to Example IdP')")
        page.wait_for_selector("text=Addresses at gmail.example may not sign in to this server.")
        shot(page, "sign-in-sso-refused.png")
        assert not Membership.objects.filter(user__email="eve@gmail.example").exists()
        assert page.url.startswith(f"{base}{CALLBACK_PATH}")
