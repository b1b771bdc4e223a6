"""Secrets never reach the logs: API keys (good, revoked and forged), passwords, session
and CSRF cookies, visitor tokens, webhook and inbound-email secrets, through the paths
that handle them, with every logger at DEBUG."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from rest_framework.test import APIClient

from bots.chat.visitors import Visitor, visitor_token_issue
from neo_support.services import api_key_create, api_key_revoke
from tests.factories import BotFactory, MembershipFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def test_no_secret_appears_in_any_log_line(caplog, settings) -> None:
    settings.NEO_RATE_API = "100000/minute"
    caplog.set_level(logging.DEBUG)
    membership = MembershipFactory(role="owner")
    bot = BotFactory(organization=membership.organization)
    endpoint = WebhookEndpointFactory(organization=membership.organization)
    api_key, raw_key = api_key_create(organization=membership.organization, name="crm")
    revoked, revoked_key = api_key_create(organization=membership.organization, name="old")
    api_key_revoke(api_key=revoked)
    forged = raw_key[:-4] + "abcd"
    token = visitor_token_issue(Visitor(bot_id=bot.pk, visitor_id="visitor-secret", conversation_id=None))
    secrets = {
        "api key": raw_key,
        "revoked key": revoked_key,
        "forged key": forged,
        "password": PASSWORD,
        "visitor token": token,
        "webhook secret": endpoint.secret,
        "inbound secret": bot.inbound_secret,
        "SECRET_KEY": settings.SECRET_KEY,
    }

    for key in (raw_key, revoked_key, forged):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        api.get("/api/bots/")
        api.post("/api/bots/", {"name": ""}, format="json")

    browser = Client(enforce_csrf_checks=True)
    browser.post("/accounts/login/", {"login": membership.user.username, "password": PASSWORD})
    browser.post("/accounts/login/", {"login": membership.user.username, "password": PASSWORD + "x"})
    browser.get("/accounts/login/")
    cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
    login = Client()
    assert login.login(username=membership.user.username, password=PASSWORD)
    login.get("/dashboard/")
    login.post("/dashboard/settings/", {"name": ""})
    cookies.update({name: morsel.value for name, morsel in login.cookies.items()})
    secrets.update({f"cookie {name}": value for name, value in cookies.items() if value})

    Client().post(
        f"/api/bots/{bot.public_key}/inbound-email",
        b"From: a@example.com\r\nSubject: hi\r\n\r\nhello",
        content_type="message/rfc822",
        HTTP_X_NEO_SIGNATURE="sha256=" + "0" * 64,
    )
    Client().post(
        f"/chat/{bot.public_key}/frames",
        '{"type": "hello", "v": 1, "token": "' + token + '"}',
        content_type="application/json",
        HTTP_X_VISITOR_TOKEN=token,
    )

    logged = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    assert logged, "nothing was logged, so nothing was checked"
    leaked = [name for name, value in secrets.items() if value and value in logged]
    assert leaked == []
