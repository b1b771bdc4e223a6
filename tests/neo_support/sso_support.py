"""Shared by the single sign-on tests: the OpenID provider process (tests/oidc_provider.py)
started on loopback, the install's settings pointing at it, and a person signing in at it
as a browser would (its sign-in form, then the redirect back to us)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from csp.constants import SELF
from django.test import Client

from neo_support.sso_config import (
    PROVIDER_ID,
    SsoConfig,
    parse_domain_rules,
    sign_in_origins,
    socialaccount_providers,
)

PROVIDER_PROGRAM = Path(__file__).resolve().parents[1] / "oidc_provider.py"
CLIENT_ID = "neo-support"
CLIENT_SECRET = "a-client-secret-never-logged"
CALLBACK_PATH = f"/accounts/oidc/{PROVIDER_ID}/login/callback/"
LOGIN_PATH = f"/accounts/oidc/{PROVIDER_ID}/login/"


@dataclass
class Provider:
    issuer: str
    fault_file: Path
    process: subprocess.Popen[str]

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def misbehave(self, fault: str) -> None:
        """From the next request on: audience, nonce, issuer, or "" to behave."""
        self.fault_file.write_text(fault)


@contextmanager
def oidc_provider(directory: Path, *, redirect_uris: list[str], users: dict[str, dict[str, Any]]) -> Iterator[Provider]:
    """django-oauth-toolkit's OIDC server in its own process; stopped on exit."""
    fault_file = directory / "fault"
    fault_file.write_text("")
    config = directory / "provider.json"
    config.write_text(
        json.dumps(
            {
                "db": str(directory / "provider.sqlite3"),
                "fault_file": str(fault_file),
                "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris}],
                "users": users,
            }
        )
    )
    errors = (directory / "provider.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(PROVIDER_PROGRAM), str(config)], stdout=subprocess.PIPE, stderr=errors, text=True
    )
    try:
        assert process.stdout is not None
        issuer = process.stdout.readline().strip()
        if not issuer.startswith("http://"):
            process.wait(timeout=10)
            raise RuntimeError(f"the OpenID provider did not start: {(directory / 'provider.log').read_text()}")
        yield Provider(issuer=issuer, fault_file=fault_file, process=process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        errors.close()


def sso_config(provider: Provider, domains: str, *, name: str = "Example IdP") -> SsoConfig:
    return SsoConfig(
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        name=name,
        domains=parse_domain_rules("NEO_OIDC_DOMAINS", domains),
    )


def use_sso(settings: Any, config: SsoConfig) -> None:
    """The install's settings as NEO_OIDC_* would make them (settings.py)."""
    settings.NEO_SSO = config
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers(config)
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = [SELF, *sign_in_origins(config)]
    settings.CONTENT_SECURITY_POLICY = policy


def sign_in_at_provider(authorize_url: str, *, username: str, password: str) -> str:
    """What a browser does at the provider: open the request, sign in on its form, and
    follow it to the redirect back to us. Returns that redirect's URL (code and state)."""
    browser = requests.Session()
    response = browser.get(authorize_url, allow_redirects=True, timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
    assert token is not None, response.text[:500]
    next_url = re.search(r'name="next" value="([^"]*)"', response.text)
    assert next_url is not None
    response = browser.post(
        response.url,
        data={
            "csrfmiddlewaretoken": token.group(1),
            "username": username,
            "password": password,
            "next": next_url.group(1).replace("&amp;", "&"),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:500]
    response = browser.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return str(response.headers["Location"])


def start_sign_in(client: Client) -> str:
    """Press "Log in with …" on our sign-in page; the provider's URL it sends the browser to."""
    response = client.post(LOGIN_PATH)
    assert response.status_code == 302, response.content[:500]
    return str(response["Location"])


def come_back(client: Client, redirect: str) -> Any:
    """The browser arriving back at our callback with the provider's answer."""
    parts = urlsplit(redirect)
    assert parts.path == CALLBACK_PATH, redirect
    return client.get(f"{parts.path}?{parts.query}")
