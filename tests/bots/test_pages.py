"""Routing, error pages, login, dashboard and the demo page over plain HTTP."""

from __future__ import annotations

import re

import pytest

from tests.factories import BotFactory, KnowledgeBaseFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_unknown_api_route_answers_json_404(client) -> None:
    response = client.get("/api/v9/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_page_answers_an_html_404(client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Page not found" in response.content


def test_the_dashboard_sends_strangers_to_the_login_page(client) -> None:
    OrganizationFactory()  # past first-run setup (tests/neo_support/test_setup.py covers an empty install)
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    login = client.get(response["Location"])
    assert login.status_code == 200 and b"Log in" in login.content


def test_a_member_sees_only_their_organizations_bots_and_knowledge_bases(client, organization, member) -> None:
    BotFactory(organization=organization, name="Our helper")
    KnowledgeBaseFactory(organization=organization, name="Our docs")
    other = OrganizationFactory()
    BotFactory(organization=other, name="Their helper")
    KnowledgeBaseFactory(organization=other, name="Their docs")

    client.force_login(member)
    page = client.get("/dashboard/").content.decode()
    assert organization.name in page
    assert "Our helper" in page and "Our docs" in page
    assert "Their helper" not in page and "Their docs" not in page


def test_a_user_without_an_organization_is_told_so(client) -> None:
    OrganizationFactory()  # someone else's: with none at all, the dashboard leads to /setup/
    client.force_login(UserFactory())
    response = client.get("/dashboard/")
    assert response.status_code == 403
    assert b"not a member of any organization" in response.content


def test_logging_in_with_the_form_reaches_the_dashboard(client, member) -> None:
    response = client.post(
        "/accounts/login/", {"login": member.username, "password": "correct horse battery staple"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/dashboard/"
    assert response.status_code == 200


def test_the_root_redirects_to_the_dashboard(client) -> None:
    OrganizationFactory()  # past first-run setup
    assert client.get("/")["Location"] == "/dashboard/"


def test_the_demo_page_explains_itself_without_demo_data(client) -> None:
    response = client.get("/demo/")
    assert response.status_code == 404
    assert b"load_demo" in response.content


def test_the_demo_page_embeds_the_widget_as_a_customer_would(client) -> None:
    from tests.factories import BotFactory

    bot = BotFactory(organization__slug="tallyho-demo")
    response = client.get("/demo/", follow=True)
    assert response.redirect_chain[-1][0] == f"/demo/{bot.public_key}/"
    tag = f'<script src="http://testserver/widget.js" data-bot-key="{bot.public_key}" async></script>'
    assert tag.encode() in response.content
    assert client.get("/demo/pk_unknown/").status_code == 404


def test_widget_js_is_cacheable_and_revalidated_by_etag(client) -> None:
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert response["Cache-Control"] == "public, max-age=300"
    assert b"data-bot-key" in response.content
    again = client.get("/widget.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_the_overview_shows_every_served_model_with_its_state(client, member, settings, tiny_neo) -> None:
    """Issue 24: the overview showed NEO_MODEL alone, so a second model without its weights went unnoticed."""
    settings.NEO_TASKS_IN_PROCESS = True
    second = "/nonexistent/second-model"
    settings.NEO_MODELS = [second]
    client.force_login(member)
    page = client.get("/dashboard/").content.decode()

    lines = re.findall(r'<p class="muted served-model">(.*?)</p>', page, re.S)
    assert len(lines) == 2
    assert lines[0] == f"Generation model: {tiny_neo} (the default, not loaded yet, loads with the first question)."
    assert lines[1] == f"Generation model: {second} (unavailable)."
    [alert] = re.findall(r'<section class="card warning" role="alert">(.*?)</section>', page, re.S)
    assert f"Answers are extractive for now: {second}" in alert and "second-model" in alert.split("</h2>")[1]


def test_with_workers_apart_the_overview_says_which_queue_has_no_worker(client, member, settings) -> None:
    settings.NEO_TASKS_IN_PROCESS = False
    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/8"
    settings.NEO_MODEL, settings.NEO_MODELS = "org/only-model-h30", []
    client.force_login(member)
    page = client.get("/dashboard/").content.decode()
    [line] = re.findall(r'<p class="muted served-model">(.*?)</p>', page, re.S)
    assert line == "Generation model: org/only-model-h30 (unknown: no live worker consumes queue generation)."
