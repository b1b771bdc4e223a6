"""The audit log records each staff action of the access matrix's write routes: every
write route of the table in test_access_matrix (dashboard and API) is walked as a member
allowed to use it, with input that makes the change, and an entry naming the action, the
actor and the organization must appear. A new write route fails
`test_every_write_route_of_the_matrix_is_walked` until it is added here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from bots.models import Bot, Conversation, ModelVersion, ModelVersionStatus
from neo_support import rate_limits
from neo_support.models import AuditEntry, Membership
from neo_support.services import api_key_create
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from tests.bots.tuning.test_tuning import history
from tests.factories import MembershipFactory
from tests.neo_support.test_access_matrix import API, DASHBOARD, tenant, url_for

pytestmark = pytest.mark.django_db

Ids = dict[str, Any]


@dataclass(frozen=True)
class Step:
    action: str  # the audit action the request must record
    data: Callable[[Ids], dict[str, Any]] = field(default=lambda ids: {})


def bot_name(ids: Ids) -> str:
    return str(Bot.objects.get(pk=ids["bot_id"]).name)


def ready_to_tune(ids: Ids) -> dict[str, Any]:
    """The bot's running version stopped, and enough answered history to start a run."""
    bot = Bot.objects.get(pk=ids["bot_id"])
    ModelVersion.objects.filter(bot=bot).update(status=ModelVersionStatus.FAILED)
    history(bot, conversations=55)
    return {"action": "start", "epochs": "1"}


def knowledge_base_name(ids: Ids) -> str:
    return str(KnowledgeBase.objects.get(pk=ids["knowledge_base_id"]).name)


def a_visitor(ids: Ids) -> dict[str, Any]:
    """A person the organization holds data about, to export or erase."""
    conversation = Conversation.objects.filter(bot_id=ids["bot_id"]).exclude(visitor_id="").earliest("pk")
    return {"kind": "visitor_id", "q": conversation.visitor_id}


HOOK = {"url": "https://hooks.example.com/walk", "events": ["ticket.created"]}

# (route, method) → the requests to make, each with the action it must record.
WALK: dict[tuple[str, str], list[Step]] = {
    ("dashboard/bots/new", "post"): [Step("bot.create", lambda ids: {"name": "Walked", "answer_mode": "extractive"})],
    ("dashboard/bots/<int:bot_id>/", "post"): [
        Step("bot.update", lambda ids: {"section": "confidence", "answer_threshold": "0.7", "handoff_threshold": "0.2"})
    ],
    ("dashboard/bots/<int:bot_id>/delete", "post"): [Step("bot.delete", lambda ids: {"confirm_name": bot_name(ids)})],
    ("dashboard/bots/<int:bot_id>/model/", "post"): [
        Step("model.deploy", lambda ids: {"action": "deploy", "version": ids["ready_version_id"]}),
        Step("model.rollback", lambda ids: {"action": "rollback"}),
        Step("model.run_cancel", lambda ids: {"action": "cancel", "version": ids["version_id"]}),
        Step("model.run_start", ready_to_tune),
    ],
    ("dashboard/moderation/<int:message_id>/false-positive", "post"): [Step("moderation.false_positive")],
    ("dashboard/moderation/taught/<int:example_id>/remove", "post"): [Step("moderation.untaught")],
    ("dashboard/inbox/<int:ticket_id>/act", "post"): [
        Step("ticket.note", lambda ids: {"action": "note", "text": "Checked the order."}),
        Step("ticket.assign", lambda ids: {"action": "assign", "assignee": ids["user_id"]}),
        Step("ticket.update", lambda ids: {"action": "update", "priority": "high"}),
    ],
    ("dashboard/team/invite", "post"): [
        Step("member.invite", lambda ids: {"email": "new@example.com", "role": "agent"})
    ],
    ("dashboard/team/members/<int:membership_id>", "post"): [
        Step("member.role_change", lambda ids: {"action": "role", "role": "agent"}),
        Step("member.remove", lambda ids: {"action": "remove"}),
    ],
    ("dashboard/team/invitations/<int:invitation_id>/revoke", "post"): [Step("member.invitation_revoke")],
    ("dashboard/api-keys/", "post"): [
        Step("api_key.create", lambda ids: {"name": "Walked key", "scopes": ["audit:read"]})
    ],
    ("dashboard/api-keys/<int:key_id>/revoke", "post"): [Step("api_key.revoke")],
    ("dashboard/webhooks/", "post"): [Step("webhook.create", lambda ids: HOOK)],
    ("dashboard/webhooks/<int:endpoint_id>/active", "post"): [
        Step("webhook.active_change", lambda ids: {"active": "0"})
    ],
    ("dashboard/webhooks/<int:endpoint_id>/delete", "post"): [Step("webhook.delete")],
    ("dashboard/settings/", "post"): [Step("organization.settings_change", lambda ids: {"name": "Renamed Ltd"})],
    ("dashboard/knowledge-bases/", "post"): [Step("knowledge_base.create", lambda ids: {"name": "Walked docs"})],
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/", "post"): [
        Step("document.upload", lambda ids: {"action": "add", "title": "Walk", "text": "Parcels ship daily."}),
        Step("knowledge_base.update", lambda ids: {"action": "settings", "name": "Renamed docs", "description": "d"}),
        Step("knowledge_base.delete", lambda ids: {"action": "delete", "confirm_name": knowledge_base_name(ids)}),
    ],
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/delete", "post"): [
        Step("document.delete")
    ],
    ("dashboard/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/retry", "post"): [
        Step("document.retry")
    ],
    ("dashboard/organizations/new", "post"): [Step("organization.create", lambda ids: {"name": "Second Ltd"})],
    ("dashboard/organizations/<int:organization_id>/leave", "post"): [Step("member.leave")],
    ("api/^bots/$", "post"): [Step("bot.create", lambda ids: {"name": "API bot"})],
    ("api/^bots/(?P<pk>[^/.]+)/$", "patch"): [Step("bot.update", lambda ids: {"name": "Renamed bot"})],
    ("api/^bots/(?P<pk>[^/.]+)/$", "delete"): [Step("bot.delete")],
    ("api/^knowledge-bases/$", "post"): [Step("knowledge_base.create", lambda ids: {"name": "API docs"})],
    ("api/^knowledge-bases/(?P<pk>[^/.]+)/$", "patch"): [
        Step("knowledge_base.update", lambda ids: {"name": "Renamed API docs"})
    ],
    ("api/^knowledge-bases/(?P<pk>[^/.]+)/$", "delete"): [Step("knowledge_base.delete")],
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/", "post"): [
        Step("document.upload", lambda ids: {"title": "API note", "text": "Returns are free."})
    ],
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/", "delete"): [Step("document.delete")],
    ("api/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/retry/", "post"): [
        Step("document.retry")
    ],
    ("api/knowledge-bases/<int:knowledge_base_id>/imports/", "post"): [
        Step("knowledge_base.site_import", lambda ids: {"url": "https://93.184.215.14/", "max_pages": 1})
    ],
    ("api/^conversations/$", "post"): [
        Step("conversation.create", lambda ids: {"bot": ids["bot_id"], "text": "Where is my parcel?"})
    ],
    ("api/^conversations/(?P<pk>[^/.]+)/messages/$", "post"): [
        Step("conversation.message", lambda ids: {"text": "And my refund?"})
    ],
    ("api/messages/<int:message_id>/feedback/", "post"): [Step("message.feedback", lambda ids: {"rating": "up"})],
    ("api/tickets/", "post"): [
        Step(
            "ticket.create", lambda ids: {"bot": ids["bot_id"], "text": "My parcel is late.", "email": "c@example.com"}
        )
    ],
    ("api/webhooks/", "post"): [Step("webhook.create", lambda ids: HOOK)],
    ("api/webhooks/<int:endpoint_id>/", "delete"): [Step("webhook.delete")],
    ("dashboard/privacy/erase", "post"): [Step("person.erase", a_visitor)],
    ("dashboard/privacy/retention/", "post"): [Step("retention.update", lambda ids: {"tickets": "400"})],
    ("api/privacy/erasures/", "post"): [Step("person.erase", a_visitor)],
    ("api/privacy/retention/", "patch"): [Step("retention.update", lambda ids: {"tickets": 400})],
}

# Write routes that change no organization's data, or whose record could not outlive them.
NOT_WALKED = {
    # Chooses which organization the session shows: a preference of the session, not a change.
    ("dashboard/organizations/switch", "post"): "changes nothing but the session",
    # The organization's audit log is deleted with it; the deletion goes to the server log
    # (test_deleting_an_organization_is_told_to_the_server_log).
    ("dashboard/organizations/<int:organization_id>/delete", "post"): "the log goes with the organization",
}

WRITES = [(route, method) for route, method, _area, writes in DASHBOARD + API if writes and method != "get"]


def test_every_write_route_of_the_matrix_is_walked() -> None:
    assert set(WRITES) - set(WALK) - set(NOT_WALKED) == set(), "add the new write route to WALK"
    assert set(WALK) - set(WRITES) == set(), "WALK names a route that is not a write route of the matrix"


@pytest.fixture(autouse=True)
def _quiet(settings) -> None:  # type: ignore[no-untyped-def]
    settings.NEO_RATE_API = "100000/minute"
    settings.NEO_API_REPLY_WAIT_SECONDS = 0
    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True
    settings.NEO_WEBHOOK_ALLOW_PRIVATE = True
    rate_limits.rate_reset()


def world(owner: Membership) -> Ids:
    """One of everything in the owner's organization, ready for every write to succeed."""
    organization = owner.organization
    ids: Ids = tenant(organization)
    ids["user_id"] = owner.user_id
    bot = Bot.objects.get(pk=ids["bot_id"])
    ids["ready_version_id"] = ModelVersion.objects.create(
        bot=bot, number=2, base_model="tiny", status=ModelVersionStatus.READY
    ).pk
    # A retry needs a document that failed for a reason that may pass.
    Document.objects.filter(pk=ids["document_id"]).update(status=DocumentStatus.FAILED, retryable=True)
    # Leaving needs another owner to stay behind.
    MembershipFactory(organization=organization, role="owner")
    return ids


def entries_for(owner: Membership) -> Any:
    """Entries acted by the owner's user, in any organization they hold or held (a new
    organization's, one just left)."""
    return AuditEntry.objects.filter(actor_label=owner.user.get_username())


# Dashboard routes as a signed-in owner; API routes as that owner and as a full-access key.
WALKERS = [
    (route, method, as_)
    for route, method in sorted(WALK)
    for as_ in (("member", "api key") if route.startswith("api") else ("member",))
]


@pytest.mark.parametrize(("route", "method", "as_"), WALKERS)
def test_each_write_route_records_its_action(route: str, method: str, as_: str) -> None:
    api = route.startswith("api")
    owner = MembershipFactory(role="owner")
    ids = world(owner)
    client: Any = APIClient() if api else Client()
    if as_ == "member":
        client.force_login(owner.user)
    else:
        key, raw_key = api_key_create(organization=owner.organization, name="Walker")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    for step in WALK[(route, method)]:
        before = AuditEntry.objects.filter(action=step.action).count()
        data = step.data(ids)
        if api:
            response = getattr(client, method)(url_for(route, ids), data, format="json")
        else:
            response = client.post(url_for(route, ids), data)
        assert response.status_code < 400, (step, response.status_code, response.content[:400])
        assert AuditEntry.objects.filter(action=step.action).count() > before, step
        entry = AuditEntry.objects.filter(action=step.action).latest("id")
        if as_ == "member":
            assert (entry.actor_kind, entry.actor_id) == ("user", owner.user_id)
        else:
            assert (entry.actor_kind, entry.actor_id) == ("api_key", key.pk)
        assert entry.ip == "127.0.0.1"
        if step.action != "organization.create":  # the new organization's log, not this one's
            assert entry.organization_id == owner.organization_id


def test_deleting_an_organization_is_told_to_the_server_log(caplog: pytest.LogCaptureFixture) -> None:
    owner = MembershipFactory(role="owner")
    organization = owner.organization
    client = Client()
    client.force_login(owner.user)
    with caplog.at_level(logging.WARNING, logger="neo_support.organizations"):
        response = client.post(
            f"/dashboard/organizations/{organization.pk}/delete", {"confirm_name": organization.name}
        )
    assert response.status_code == 302, response.content[:300]
    assert f"Organization {organization.pk} ({organization.name}) deleted by {owner.user.get_username()}" in caplog.text
