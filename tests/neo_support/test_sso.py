"""Single sign-on against a real OpenID provider (django-oauth-toolkit in its own process,
tests/oidc_provider.py): a first sign-in makes the account and joins the domain's
organization with the domain's role; every response that must not be trusted (wrong
state, nonce, issuer, audience; an address not allowed or not verified) is refused with
a page saying why, creates nothing, and is logged without codes, tokens or secrets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model

from neo_support.env import ConfigError
from neo_support.models import Membership, Organization
from neo_support.selectors import CURRENT_ORGANIZATION_KEY
from neo_support.sso_config import sso_config_from_env
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.neo_support.sso_support import (
    CALLBACK_PATH,
    CLIENT_SECRET,
    LOGIN_PATH,
    Provider,
    come_back,
    oidc_provider,
    sign_in_at_provider,
    sso_config,
    start_sign_in,
    use_sso,
)

User = get_user_model()

USERS = {
    "ida": {"password": "ida's provider password", "email": "ida@example.com", "name": "Ida Lind"},
    "pia": {"password": "pia's provider password", "email": "pia@partner.example"},
    "olle": {"password": "olle's provider password", "email": "olle@example.com"},
    "eve": {"password": "eve's provider password", "email": "eve@elsewhere.org"},
    "una": {"password": "una's provider password", "email": "una@example.com", "email_verified": False},
    "gus": {"password": "gus's provider password", "email": "gus@ghost.example"},
}
DOMAINS = "example.com=acme:agent, partner.example=beta:viewer, ghost.example=no-such-org:agent"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with oidc_provider(
        tmp_path_factory.mktemp("oidc"),
        redirect_uris=[f"{scheme}://testserver{CALLBACK_PATH}" for scheme in ("http", "https")],
        users=USERS,
    ) as running:
        yield running


@pytest.fixture
def sso(provider: Provider, settings, db):  # type: ignore[no-untyped-def]
    provider.misbehave("")
    use_sso(settings, sso_config(provider, DOMAINS))
    acme = OrganizationFactory(name="Acme Ltd", slug="acme")
    beta = OrganizationFactory(name="Beta GmbH", slug="beta")
    return acme, beta


def sign_in(client, username: str):  # type: ignore[no-untyped-def]
    authorize = start_sign_in(client)
    back = sign_in_at_provider(authorize, username=username, password=USERS[username]["password"])
    return come_back(client, back)


def test_a_first_sign_in_makes_the_account_and_joins_the_domains_organization(client, sso) -> None:
    acme, _ = sso
    authorize = start_sign_in(client)
    asked = parse_qs(urlsplit(authorize).query)
    assert asked["nonce"][0] and asked["state"][0] and asked["code_challenge_method"] == ["S256"]
    back = sign_in_at_provider(authorize, username="ida", password=USERS["ida"]["password"])

    response = come_back(client, back)

    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    user = User.objects.get(email="ida@example.com")
    assert Membership.objects.get(user=user).organization == acme
    assert Membership.objects.get(user=user).role == "agent"
    assert client.session[CURRENT_ORGANIZATION_KEY] == acme.pk
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b"Acme Ltd" in page.content

    # Signing in again is the same account and the same single membership.
    client.logout()
    assert sign_in(client, "ida").status_code == 302
    assert User.objects.filter(email="ida@example.com").count() == 1
    assert Membership.objects.filter(user=user).count() == 1


def test_each_domain_lands_in_its_own_organization_with_its_role(client, sso) -> None:
    _, beta = sso
    assert sign_in(client, "pia").status_code == 302
    membership = Membership.objects.get(user__email="pia@partner.example")
    assert (membership.organization, membership.role) == (beta, "viewer")


def test_an_existing_account_with_the_address_is_the_one_signed_in_and_keeps_its_role(client, sso) -> None:
    acme, beta = sso
    olle = UserFactory(username="olle.s", email="olle@example.com")
    MembershipFactory(user=olle, organization=acme, role="admin")
    MembershipFactory(user=olle, organization=beta, role="owner")

    assert sign_in(client, "olle").status_code == 302

    assert User.objects.filter(email="olle@example.com").count() == 1
    assert SocialAccount.objects.get(provider="sso").user == olle
    assert Membership.objects.get(user=olle, organization=acme).role == "admin"
    assert client.session[CURRENT_ORGANIZATION_KEY] == acme.pk


def nothing_created(username: str) -> bool:
    email = USERS[username]["email"]
    return not (
        User.objects.filter(email=email).exists()
        or SocialAccount.objects.exists()
        or Membership.objects.filter(user__email=email).exists()
    )


def assert_logged_without_secrets(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Single sign-on" in logged
    for secret in (CLIENT_SECRET, *secrets):
        assert secret not in logged


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [
        ("nonce", 400, "nonce mismatch"),
        ("issuer", 400, "issuer mismatch"),
        ("audience", 400, "could not be accepted"),
    ],
)
def test_a_provider_answer_that_does_not_fit_this_sign_in_is_refused(
    client, sso, provider: Provider, caplog, fault: str, status: int, says: str
) -> None:
    caplog.set_level(logging.INFO)
    authorize = start_sign_in(client)
    provider.misbehave(fault)
    back = sign_in_at_provider(authorize, username="ida", password=USERS["ida"]["password"])

    response = come_back(client, back)

    assert response.status_code == status
    assert says in response.content.decode()
    assert nothing_created("ida")
    assert "_auth_user_id" not in client.session
    code = parse_qs(urlsplit(back).query)["code"][0]
    assert_logged_without_secrets(caplog, code)


def test_a_wrong_or_replayed_state_is_refused(client, sso, caplog) -> None:
    caplog.set_level(logging.INFO)
    authorize = start_sign_in(client)
    back = sign_in_at_provider(authorize, username="ida", password=USERS["ida"]["password"])
    query = parse_qs(urlsplit(back).query)
    forged = f"{urlsplit(back).path}?{urlencode({'code': query['code'][0], 'state': 'forged-state'})}"

    response = client.get(forged)

    assert response.status_code == 400
    assert "could not be accepted" in response.content.decode()
    assert nothing_created("ida")
    assert_logged_without_secrets(caplog, query["code"][0])

    # The real answer still works once; the same answer again is refused.
    assert come_back(client, back).status_code == 302
    client.logout()
    replayed = come_back(client, back)
    assert replayed.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("username", "status", "says"),
    [
        ("eve", 403, "Addresses at elsewhere.org may not sign in"),
        ("una", 403, "not verified"),
        ("gus", 400, "not set up correctly"),
    ],
)
def test_an_address_the_install_does_not_admit_is_refused(
    client, sso, caplog, username: str, status: int, says: str
) -> None:
    caplog.set_level(logging.INFO)
    response = sign_in(client, username)

    assert response.status_code == status
    assert says in response.content.decode()
    assert nothing_created(username)
    assert_logged_without_secrets(caplog, USERS[username]["email"])


def test_without_single_sign_on_configured_there_is_no_button_and_no_flow(client, db) -> None:
    page = client.get("/accounts/login/")
    assert b"Log in with" not in page.content
    assert client.post(LOGIN_PATH).status_code == 404


def test_the_sign_in_page_offers_the_provider_when_configured(client, sso) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert "Log in with Example IdP" in page
    assert f'action="{LOGIN_PATH}"' in page


# Settings -------------------------------------------------------------------------------


BASE = {
    "NEO_OIDC_ISSUER": "https://login.example.com/realms/staff",
    "NEO_OIDC_CLIENT_ID": "neo",
    "NEO_OIDC_CLIENT_SECRET": "s",
    "NEO_OIDC_DOMAINS": "Example.com=acme:agent",
}


def test_the_environment_configures_single_sign_on() -> None:
    assert sso_config_from_env({}) is None
    config = sso_config_from_env(BASE)
    assert config is not None
    assert config.rule_for("Ida@EXAMPLE.com") is not None and config.rule_for("ida@example.org") is None
    assert config.name == "Single sign-on"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"NEO_OIDC_ISSUER": "login.example.com"}, "NEO_OIDC_ISSUER: URL scheme"),
        ({"NEO_OIDC_CLIENT_ID": ""}, "NEO_OIDC_CLIENT_ID: required"),
        ({"NEO_OIDC_CLIENT_SECRET": ""}, "NEO_OIDC_CLIENT_SECRET: required"),
        ({"NEO_OIDC_DOMAINS": ""}, "NEO_OIDC_DOMAINS: list at least one"),
        ({"NEO_OIDC_DOMAINS": "example.com=acme"}, "expected domain=organization-slug:role"),
        ({"NEO_OIDC_DOMAINS": "example.com=acme:owner"}, "role must be one of admin, agent, viewer"),
        ({"NEO_OIDC_DOMAINS": "not a domain=acme:agent"}, "not an email domain"),
        ({"NEO_OIDC_DOMAINS": "a.com=x:agent,A.com=y:viewer"}, "a.com is listed twice"),
    ],
)
def test_a_malformed_setting_names_the_variable(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        sso_config_from_env({**BASE, **changes})


def test_organizations_are_left_alone_by_refusals(client, sso) -> None:
    before = set(Organization.objects.values_list("slug", flat=True))
    sign_in(client, "gus")
    assert set(Organization.objects.values_list("slug", flat=True)) == before
