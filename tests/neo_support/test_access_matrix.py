"""Every dashboard page and API endpoint × every role, from one table
(neo_support.permissions): a role that may act is never refused, one that may not gets
403, a signed-out visitor is sent to sign in (pages) or gets 401 (API), and another
organization's object is a 404 through every page and endpoint.

Each check also runs for a user who belongs to two organizations, with a different role
in each, switched to one and then the other with the header's switcher: the role that
counts is the one in the organization acted in, and the other organization's objects are
404 although the user is a member there too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from bots.models import ModelVersion, ModerationExample, PersonErasure
from neo_support import rate_limits
from neo_support.models import Membership, Organization, Role
from neo_support.permissions import Area, role_may
from neo_support.services import api_key_create
from tests.factories import (
    BotFactory,
    ConversationFactory,
    DocumentFactory,
    InvitationFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
    TicketFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db

# Rules for the organization pages, which the role table does not cover: deleting an
# organization is for its owners; making a new one for owners of any organization.
OWNER = "owner of the organization in the path"
OWNER_ANYWHERE = "owner of any organization"

# (route as the URL resolver spells it, method, area or None for "every member" (or one of
# the two rules above), writes?)
DASHBOARD = [
    ("dashboard/", "get", None, False),
    ("dashboard/bots/new", "get", Area.BOTS, True),  # a form to create, nothing to read
    ("dashboard/bots/new", "post", Area.BOTS, True),
    ("dashboard/bots/<int:bot_id>/", "get", Area.BOTS, False),
    ("dashboard/bots/<int:bot_id>/", "post", Area.BOTS, True),
    ("dashboard/bots/<int:bot_id>/delete", "post", Area.BOTS, True),
    ("dashboard/bots/<int:bot_id>/model/", "get", Area.BOTS, False),
    ("dashboard/bots/<int:bot_id>/model/", "post", Area.BOTS, True),
    ("dashboard/bots/<int:bot_id>/model/status.json", "get", Area.BOTS, False),
    ("dashboard/bots/<int:bot_id>/model/versions/<int:version_id>/dataset.jsonl", "get", Area.BOTS, False),
    ("dashboard/moderation/", "get", Area.MODERATION, False),
    ("dashboard/moderation/<int:message_id>/false-positive", "post", Area.MODERATION, True),
    ("dashboard/moderation/taught/<int:example_id>/remove", "post", Area.MODERATION, True),
    ("dashboard/inbox/", "get", Area.TICKETS, False),
    ("dashboard/inbox/<int:ticket_id>/", "get", Area.TICKETS, False),
    ("dashboard/inbox/<int:ticket_id>/act", "post", Area.TICKETS, True),
    ("dashboard/team/", "get", Area.TEAM, False),
    ("dashboard/team/invite", "post", Area.TEAM, True),
    ("dashboard/team/members/<int:membership_id>", "post", Area.TEAM, True),
    ("dashboard/team/invitations/<int:invitation_id>/revoke", "post", Area.TEAM, True),
    ("dashboard/api-keys/", "get", Area.API_KEYS, False),
    ("dashboard/api-keys/", "post", Area.API_KEYS, True),
    ("dashboard/api-keys/<int:key_id>/revoke", "post", Area.API_KEYS, True),
    ("dashboard/webhooks/", "get", Area.WEBHOOKS, False),
    ("dashboard/webhooks/", "post", Area.WEBHOOKS, True),
    ("dashboard/webhooks/<int:endpoint_id>/active", "post", Area.WEBHOOKS, True),
    ("dashboard/webhooks/<int:endpoint_id>/delete", "post", Area.WEBHOOKS, True),
    ("dashboard/settings/", "get", Area.SETTINGS, False),
    ("dashboard/settings/", "post", Area.SETTINGS, True),
    ("dashboard/audit/", "get", Area.AUDIT, False),
    ("dashboard/audit/export.csv", "get", Area.AUDIT, False),
    ("dashboard/analytics/", "get", Area.ANALYTICS, False),
    ("dashboard/analytics/export.csv", "get", Area.ANALYTICS, False),
    ("dashboard/conversations/", "get", Area.CONVERSATIONS, False),
    ("dashboard/conversations/<int:conversation_id>/", "get", Area.CONVERSATIONS, False),
    ("dashboard/knowledge-bases/", "get", Area.KNOWLEDGE, False),
    ("dashboard/knowledge-bases/", "post", Area.KNOWLEDGE, True),
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/", "get", Area.KNOWLEDGE, False),
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/", "post", Area.KNOWLEDGE, True),
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/status.json", "get", Area.KNOWLEDGE, False),
    (
        "dashboard/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/delete",
        "post",
        Area.KNOWLEDGE,
        True,
    ),
    (
        "dashboard/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/retry",
        "post",
        Area.KNOWLEDGE,
        True,
    ),
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/playground/", "get", Area.KNOWLEDGE, False),
    ("dashboard/privacy/", "get", Area.PRIVACY, False),
    ("dashboard/privacy/export.zip", "get", Area.PRIVACY, False),
    ("dashboard/privacy/erase", "post", Area.PRIVACY, True),
    ("dashboard/privacy/erasures.json", "get", Area.PRIVACY, False),
    ("dashboard/privacy/retention/", "get", Area.PRIVACY, False),
    ("dashboard/privacy/retention/", "post", Area.PRIVACY, True),
    ("dashboard/organizations/", "get", None, False),
    ("dashboard/organizations/new", "get", OWNER_ANYWHERE, True),  # a form to create, nothing to read
    ("dashboard/organizations/new", "post", OWNER_ANYWHERE, True),
    ("dashboard/organizations/switch", "post", None, True),
    ("dashboard/organizations/<int:organization_id>/leave", "get", None, False),
    ("dashboard/organizations/<int:organization_id>/leave", "post", None, True),
    ("dashboard/organizations/<int:organization_id>/delete", "get", OWNER, False),
    ("dashboard/organizations/<int:organization_id>/delete", "post", OWNER, True),
]

API = [
    ("api/^bots/$", "get", Area.BOTS, False),
    ("api/^bots/$", "post", Area.BOTS, True),
    ("api/^bots/(?P<pk>[^/.]+)/$", "get", Area.BOTS, False),
    ("api/^bots/(?P<pk>[^/.]+)/$", "patch", Area.BOTS, True),
    ("api/^bots/(?P<pk>[^/.]+)/$", "delete", Area.BOTS, True),
    ("api/models/", "get", Area.BOTS, False),
    ("api/^knowledge-bases/$", "get", Area.KNOWLEDGE, False),
    ("api/^knowledge-bases/$", "post", Area.KNOWLEDGE, True),
    ("api/^knowledge-bases/(?P<pk>[^/.]+)/$", "get", Area.KNOWLEDGE, False),
    ("api/^knowledge-bases/(?P<pk>[^/.]+)/$", "patch", Area.KNOWLEDGE, True),
    ("api/^knowledge-bases/(?P<pk>[^/.]+)/$", "delete", Area.KNOWLEDGE, True),
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/", "get", Area.KNOWLEDGE, False),
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/", "post", Area.KNOWLEDGE, True),
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/", "get", Area.KNOWLEDGE, False),
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/", "delete", Area.KNOWLEDGE, True),
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/retry/", "post", Area.KNOWLEDGE, True),
    ("api/knowledge-bases/<int:knowledge_base_id>/imports/", "post", Area.KNOWLEDGE, True),
    ("api/knowledge-bases/<int:knowledge_base_id>/search/", "get", Area.KNOWLEDGE, False),
    ("api/^conversations/$", "get", Area.CONVERSATIONS, False),
    ("api/^conversations/$", "post", Area.CONVERSATIONS, True),
    ("api/^conversations/(?P<pk>[^/.]+)/$", "get", Area.CONVERSATIONS, False),
    ("api/^conversations/(?P<pk>[^/.]+)/messages/$", "post", Area.CONVERSATIONS, True),
    ("api/messages/<int:message_id>/feedback/", "post", Area.CONVERSATIONS, True),
    ("api/tickets/", "get", Area.TICKETS, False),
    ("api/tickets/", "post", Area.TICKETS, True),
    ("api/tickets/<int:ticket_id>/", "get", Area.TICKETS, False),
    ("api/webhooks/", "get", Area.WEBHOOKS, False),
    ("api/webhooks/", "post", Area.WEBHOOKS, True),
    ("api/webhooks/<int:endpoint_id>/", "get", Area.WEBHOOKS, False),
    ("api/webhooks/<int:endpoint_id>/", "delete", Area.WEBHOOKS, True),
    ("api/webhooks/<int:endpoint_id>/deliveries/", "get", Area.WEBHOOKS, False),
    ("api/analytics/", "get", Area.ANALYTICS, False),
    ("api/audit/", "get", Area.AUDIT, False),
    ("api/moderation/summary/", "get", Area.MODERATION, False),
    ("api/privacy/retention/", "get", Area.PRIVACY, False),
    ("api/privacy/retention/", "patch", Area.PRIVACY, True),
    ("api/privacy/person/", "get", Area.PRIVACY, False),
    ("api/privacy/person/export/", "get", Area.PRIVACY, False),
    ("api/privacy/erasures/", "get", Area.PRIVACY, False),
    ("api/privacy/erasures/", "post", Area.PRIVACY, True),
    ("api/privacy/erasures/<int:erasure_id>/", "get", Area.PRIVACY, False),
]

# Public on purpose: the schema and its docs; an invitation link (the token is the
# credential); the inbound-email hook (signed with the bot's secret); the catch-all 404.
PUBLIC = {
    "api/schema/",
    "api/docs/",
    "dashboard/invitations/<str:token>/",
    "api/bots/<str:public_key>/inbound-email",
    "^api/",
}

ROLES = [role.value for role in Role]


def routes() -> set[str]:
    def walk(patterns: list, prefix: str = "") -> list[str]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append(prefix + str(pattern.pattern))
        return found

    return {route for route in walk(get_resolver().url_patterns) if route.startswith(("dashboard", "api", "^api"))}


def test_the_table_names_every_page_and_endpoint() -> None:
    covered = {route for route, *_ in DASHBOARD + API} | PUBLIC
    assert routes() - covered == set(), "add the new route to the access table"
    assert covered - routes() == set(), "the table names a route that no longer exists"


def tenant(organization=None) -> dict[str, int]:
    """One of everything, in one organization; the ids a route may need."""
    organization = organization or OrganizationFactory()
    knowledge_base = KnowledgeBaseFactory(organization=organization)
    document = DocumentFactory(knowledge_base=knowledge_base)
    bot = BotFactory(organization=organization)
    conversation = ConversationFactory(bot=bot)
    MessageFactory(conversation=conversation, role="visitor")
    reply = MessageFactory(conversation=conversation, role="bot", text="Five days.", moderation_action="flag")
    ticket = TicketFactory(conversation=ConversationFactory(bot=bot, channel="email"))
    api_key, _ = api_key_create(organization=organization, name="matrix")
    version = ModelVersion.objects.create(bot=bot, number=1, base_model="tiny", examples={"train_agent": 1})
    dataset = Path(settings.MEDIA_ROOT) / version.adapter_dir / "dataset.jsonl"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    dataset.write_text('{"prompt": "Customer: hi\\nAssistant:", "answer": " Hello."}\n')
    return {
        "organization": organization.pk,
        "organization_id": organization.pk,
        "bot_id": bot.pk,
        "knowledge_base_id": knowledge_base.pk,
        "document_id": document.pk,
        "conversation_id": conversation.pk,
        "message_id": reply.pk,
        "example_id": ModerationExample.objects.create(
            organization=organization, filter="toxicity", text="Five days.", message=reply, embedding=bytes(4 * 384)
        ).pk,
        "ticket_id": ticket.pk,
        "endpoint_id": WebhookEndpointFactory(organization=organization).pk,
        "membership_id": MembershipFactory(organization=organization, role="viewer").pk,
        "invitation_id": InvitationFactory(organization=organization).pk,
        "key_id": api_key.pk,
        "version_id": version.pk,
        "erasure_id": PersonErasure.objects.create(
            organization=organization, subject_hash=f"{organization.pk:064d}", subject_hint="a***@e***.com"
        ).pk,
    }


PK_OF = {"bots": "bot_id", "knowledge-bases": "knowledge_base_id", "conversations": "conversation_id"}


def url_for(route: str, ids: dict[str, int]) -> str:
    if route.startswith("api/^"):  # a DRF router pattern
        path = route.replace("api/^", "/api/").rstrip("$")
        collection = path.split("/")[2]
        return path.replace("(?P<pk>[^/.]+)", str(ids[PK_OF[collection]]))
    return "/" + re.sub(r"<(?:int|str):(\w+)>", lambda m: str(ids[m.group(1)]), route)


def request(client, method: str, url: str, *, api: bool):
    if api:
        return getattr(client, method)(url, {}, format="json")
    return getattr(client, method)(url, {}) if method == "post" else client.get(url)


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    settings.NEO_RATE_API = "100000/minute"
    rate_limits.rate_reset()


# A user's role in their second organization: never the same as in the first.
OTHER_ROLE = {"owner": "viewer", "admin": "agent", "agent": "owner", "viewer": "admin"}


def allowed(area: object, role: str, writes: bool, *, roles_held: set[str]) -> bool:
    if area is None:
        return True
    if area == OWNER:
        return role == Role.OWNER
    if area == OWNER_ANYWHERE:
        return Role.OWNER in roles_held
    return role_may(role, str(area), write=writes)


def switch_to(client, organization: Organization) -> None:  # type: ignore[no-untyped-def]
    """Act in `organization` from now on, as the header's switcher does."""
    response = client.post("/dashboard/organizations/switch", {"organization": organization.pk})
    assert response.status_code == 302, response.content[:300]


def member_of_two(role: str) -> tuple[Membership, Membership]:
    """A user with `role` in one organization and another role in a second, each with one of everything."""
    first = MembershipFactory(role=role)
    second = MembershipFactory(user=first.user, role=OTHER_ROLE[role])
    return first, second


@pytest.mark.parametrize("organizations", ["one organization", "two organizations"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("route", "method", "area", "writes"), DASHBOARD + API)
def test_each_role_gets_what_the_table_allows(organizations, role, route, method, area, writes) -> None:
    memberships = [MembershipFactory(role=role)] if organizations == "one organization" else list(member_of_two(role))
    everything = [(membership, tenant(membership.organization)) for membership in memberships]
    roles_held = {membership.role for membership in memberships}
    api = route.startswith("api")
    client = APIClient() if api else Client()
    client.force_login(memberships[0].user)
    for membership, ids in everything:
        if len(memberships) > 1:
            switch_to(client, membership.organization)
        response = request(client, method, url_for(route, ids), api=api)
        if allowed(area, membership.role, writes, roles_held=roles_held):
            assert response.status_code not in (401, 403, 404), (response.status_code, response.content[:300])
            assert response.status_code < 500
        else:
            assert response.status_code == 403, (response.status_code, response.content[:300])


@pytest.mark.parametrize(("route", "method", "area", "writes"), DASHBOARD + API)
def test_signed_out_visitors_sign_in_or_get_401(client, route, method, area, writes) -> None:
    ids = tenant()
    api = route.startswith("api")
    response = request(APIClient() if api else client, method, url_for(route, ids), api=api)
    if api:
        assert response.status_code == 401
    else:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


WITH_IDS = [entry for entry in DASHBOARD + API if "<" in entry[0] or "?P" in entry[0]]
# Pages about a membership itself (leave, delete) act on the organization in their path
# for any of its members, whichever organization the session acts in.
IN_THE_CURRENT_ORGANIZATION = [entry for entry in WITH_IDS if "<int:organization_id>" not in entry[0]]


@pytest.mark.parametrize(("route", "method", "area", "writes"), WITH_IDS)
def test_another_organizations_objects_are_404_everywhere(route, method, area, writes) -> None:
    owner = MembershipFactory(role="owner")
    tenant(owner.organization)
    theirs = tenant()
    api = route.startswith("api")
    if api:
        client = APIClient()
        client.force_login(owner.user)
        keyed = APIClient()
        _, raw_key = api_key_create(organization=owner.organization, name="ours")
        keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        assert request(keyed, method, url_for(route, theirs), api=True).status_code == 404
    else:
        client = Client()
        client.force_login(owner.user)
    assert request(client, method, url_for(route, theirs), api=api).status_code == 404


@pytest.mark.parametrize(("route", "method", "area", "writes"), IN_THE_CURRENT_ORGANIZATION)
def test_the_organization_not_switched_to_is_404_everywhere_for_a_member_of_both(route, method, area, writes) -> None:
    first = MembershipFactory(role="owner")
    second = MembershipFactory(user=first.user, role="owner")
    ids = {first.organization_id: tenant(first.organization), second.organization_id: tenant(second.organization)}
    api = route.startswith("api")
    client = APIClient() if api else Client()
    client.force_login(first.user)
    for acting, other in ((first, second), (second, first)):
        switch_to(client, acting.organization)
        response = request(client, method, url_for(route, ids[other.organization_id]), api=api)
        assert response.status_code == 404, (acting.organization, response.status_code, response.content[:300])
