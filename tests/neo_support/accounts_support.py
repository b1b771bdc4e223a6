"""Shared by the staff-account tests (sign-in, two-factor, sign-up, the browser's): TOTP
codes computed as an authenticator app does, the clock the TOTP check reads, and the
account forms filled in as a person does. Their fixtures are in conftest.py."""

from __future__ import annotations

import html
import time
from typing import Any

import lxml.html
from allauth.mfa.totp.internal import auth as totp_auth
from django.test import Client

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's
STEP = 30  # seconds per TOTP code (allauth's MFA_TOTP_PERIOD)


class Clock:
    """The time allauth's TOTP check sees; starts 10 s into a 30 s step."""

    def __init__(self) -> None:
        self.now = float((int(time.time()) // STEP) * STEP + 10)

    def time(self) -> float:
        return self.now


def totp_code(secret: str, *, at: float | None = None, steps: int = 0) -> str:
    """The code an authenticator app shows for `secret` at `at` (now), `steps` steps away."""
    counter = int((time.time() if at is None else at) // STEP) + steps
    return str(totp_auth.format_hotp_value(totp_auth.hotp_value(secret, counter)))


def wait_for_a_fresh_step(margin: float = 4.0) -> None:
    """With a real clock: wait, if needed, so a code computed now is still good in `margin` s."""
    remaining = STEP - time.time() % STEP
    if remaining < margin:
        time.sleep(remaining + 0.2)


def sign_in(client: Client, login: str, password: str = PASSWORD, **extra: Any) -> Any:
    """POST the sign-in form, as a browser does (by username or email)."""
    return client.post("/accounts/login/", {"login": login, "password": password}, **extra)


def reauthenticate(client: Client) -> None:
    """Type the password again, as allauth asks before two-factor changes (for 5 minutes)."""
    response = client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert response.status_code == 302, response.content[:300]


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def text(response: Any) -> str:
    """The page as its reader sees the words (entities such as &#x27; decoded)."""
    return html.unescape(response.content.decode())


def page(response: Any) -> Any:
    return lxml.html.fromstring(response.content)


def enable_totp(client: Client, clock: Clock) -> str:
    """Turn on TOTP from the activation page, as a person does: confirm the password when
    asked, read the secret shown on the page, answer with the app's code. Returns the secret."""
    response = client.get("/accounts/2fa/totp/activate/")
    if response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/"):
        reauthenticate(client)
        response = client.get("/accounts/2fa/totp/activate/")
    assert response.status_code == 200, response.status_code
    secret = str(page(response).get_element_by_id("authenticator-secret").value)
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret, at=clock.now)})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/recovery-codes/", response
    return secret
