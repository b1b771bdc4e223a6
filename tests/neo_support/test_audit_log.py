"""The audit log itself: append-only from the application (and in Django admin), the
retention's one way out, sign-ins and failures (never the password), a settings change
recorded field by field, the page's filters and role guard, the streamed CSV export and
the read-only API."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from neo_support import audit
from neo_support.models import AuditEntry, AuditLogImmutable
from neo_support.services import api_key_create
from tests.factories import AuditEntryFactory, BotFactory, MembershipFactory, OrganizationFactory
from tests.neo_support.accounts_support import PASSWORD, sign_in

pytestmark = pytest.mark.django_db


def days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


# Append-only ----------------------------------------------------------------------------


def test_an_entry_cannot_be_changed_or_deleted_by_the_application() -> None:
    entry = audit.record(organization=OrganizationFactory(), action="bot.update", after={"name": "Helper"})
    entry.action = "bot.delete"
    with pytest.raises(AuditLogImmutable):
        entry.save()
    with pytest.raises(AuditLogImmutable):
        entry.delete()
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.filter(pk=entry.pk).update(action="bot.delete")
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(AuditLogImmutable):
        AuditEntry.objects.bulk_update([entry], ["action"])
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert (stored.action, stored.after) == ("bot.update", {"name": "Helper"})


def test_delete_expired_removes_only_that_organizations_older_entries() -> None:
    mine, theirs = OrganizationFactory(), OrganizationFactory()
    old = AuditEntryFactory(organization=mine, created_at=days_ago(40))
    recent = AuditEntryFactory(organization=mine, created_at=days_ago(5))
    their_old = AuditEntryFactory(organization=theirs, created_at=days_ago(40))
    assert audit.delete_expired(mine, days_ago(30)) == 1
    assert set(AuditEntry.objects.values_list("pk", flat=True)) == {recent.pk, their_old.pk}
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert audit.delete_expired(mine, days_ago(30)) == 0


def test_deleting_a_user_or_a_key_leaves_their_entries_as_they_were() -> None:
    member = MembershipFactory(role="owner")
    key, _ = api_key_create(organization=member.organization, name="CRM")
    audit.record(organization=member.organization, action="bot.create", actor=member.user)
    audit.record(organization=member.organization, action="bot.delete", actor=key)
    member.user.delete()
    key.delete()
    labels = set(AuditEntry.objects.values_list("action", "actor_kind", "actor_label"))
    assert ("bot.create", "user", member.user.username) in labels
    assert ("bot.delete", "api_key", f"API key CRM ({key.prefix}…)") in labels


def test_django_admin_shows_the_log_but_offers_no_add_change_or_delete() -> None:
    entry = AuditEntryFactory()
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/neo_support/auditentry/")
    assert listing.status_code == 200
    assert "Add audit entry" not in listing.content.decode()
    assert client.get("/admin/neo_support/auditentry/add/").status_code == 403
    change = client.post(f"/admin/neo_support/auditentry/{entry.pk}/change/", {"action": "bot.delete"})
    assert change.status_code == 403
    assert client.post(f"/admin/neo_support/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = client.post(
        "/admin/neo_support/auditentry/", {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302)
    assert AuditEntry.objects.get(pk=entry.pk).action == entry.action


# Sign-ins ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("own_cache")
def test_a_sign_in_is_recorded_in_each_of_the_users_organizations(client) -> None:
    first = MembershipFactory(user__username="dana", role="agent")
    second = MembershipFactory(user=first.user, role="owner")
    assert sign_in(client, "dana").status_code == 302
    entries = AuditEntry.objects.filter(action="account.sign_in")
    assert {entry.organization_id for entry in entries} == {first.organization_id, second.organization_id}
    assert {(entry.actor_kind, entry.actor_id, entry.ip) for entry in entries} == {("user", first.user_id, "127.0.0.1")}


@pytest.mark.usefixtures("own_cache")
def test_a_failed_sign_in_is_recorded_without_the_password(client) -> None:
    member = MembershipFactory(user__username="dana", user__email="dana@acme.example", role="agent")
    typed = "Tr0ub4dor&3-not-it"
    assert sign_in(client, "dana@acme.example", typed).status_code == 200
    [entry] = AuditEntry.objects.filter(action="account.sign_in_failed")
    assert entry.organization_id == member.organization_id
    assert (entry.actor_kind, entry.target_id, entry.ip) == ("anonymous", str(member.user_id), "127.0.0.1")
    assert entry.after == {"login": "dana@acme.example"}
    stored = " ".join(str(value) for value in AuditEntry.objects.values_list().get(pk=entry.pk))
    assert typed not in stored and PASSWORD not in stored


@pytest.mark.usefixtures("own_cache")
def test_a_failed_sign_in_for_no_account_reaches_no_organization(client) -> None:
    MembershipFactory(user__username="dana")
    sign_in(client, "nobody@example.com", "whatever")
    assert not AuditEntry.objects.filter(action="account.sign_in_failed").exists()


# Settings before → after -------------------------------------------------------------------


def test_a_bot_settings_change_records_each_changed_field_before_and_after() -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization, answer_threshold=0.65, handoff_threshold=0.25)
    client = Client()
    client.force_login(owner.user)
    response = client.post(
        f"/dashboard/bots/{bot.pk}/",
        {"section": "confidence", "answer_threshold": "0.8", "handoff_threshold": "0.25"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="bot.update")
    assert entry.before == {"answer_threshold": 0.65}
    assert entry.after == {"answer_threshold": 0.8}
    assert (entry.target_kind, entry.target_id, entry.target_label) == ("bot", str(bot.pk), bot.name)
    page = client.get("/dashboard/audit/").content.decode()
    assert "answer_threshold</code>: 0.65 → 0.8" in page


def test_an_organization_rename_records_the_old_and_new_name() -> None:
    owner = MembershipFactory(role="owner", organization__name="Acme")
    client = Client()
    client.force_login(owner.user)
    assert client.post("/dashboard/settings/", {"name": "Acme Ltd"}).status_code == 302
    entry = AuditEntry.objects.get(action="organization.settings_change")
    assert (entry.before, entry.after) == ({"name": "Acme"}, {"name": "Acme Ltd"})


# The page -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_agents_and_viewers_get_403_from_the_page_the_export_and_the_api(role: str) -> None:
    member = MembershipFactory(role=role)
    client = Client()
    client.force_login(member.user)
    assert client.get("/dashboard/audit/").status_code == 403
    assert client.get("/dashboard/audit/export.csv").status_code == 403
    assert "Audit log" not in client.get("/dashboard/").content.decode()
    api = APIClient()
    api.force_login(member.user)
    assert api.get("/api/audit/").status_code == 403


@pytest.fixture
def logged() -> tuple[Client, object]:
    """An admin's client, and entries by two actors across actions, targets and days."""
    admin = MembershipFactory(role="admin", user__username="alice")
    organization = admin.organization
    AuditEntryFactory(organization=organization, actor_label="alice", action="bot.update", created_at=days_ago(10))
    AuditEntryFactory(organization=organization, actor_label="bob", action="bot.delete", created_at=days_ago(3))
    AuditEntryFactory(
        organization=organization,
        actor_label="bob",
        action="api_key.create",
        target_kind="apikey",
        target_label='=HYPERLINK("http://evil")',
        created_at=days_ago(1),
    )
    AuditEntryFactory(actor_label="bob", action="bot.delete")  # another organization's
    client = Client()
    client.force_login(admin.user)
    return client, organization


def rows_of(client: Client, query: str) -> list[str]:
    page = client.get(f"/dashboard/audit/?{query}")
    assert page.status_code == 200
    return [part.split('"')[0] for part in page.content.decode().split('data-action="')[1:]]


def test_the_page_filters_by_actor_action_target_and_days(logged) -> None:
    client, _ = logged
    assert rows_of(client, "") == ["api_key.create", "bot.delete", "bot.update"]
    assert rows_of(client, "actor=BOB") == ["api_key.create", "bot.delete"]
    assert rows_of(client, "action=bot.delete") == ["bot.delete"]
    assert rows_of(client, "target_kind=apikey") == ["api_key.create"]
    since, until = days_ago(4).date().isoformat(), days_ago(2).date().isoformat()
    assert rows_of(client, f"since={since}&until={until}") == ["bot.delete"]
    assert rows_of(client, "actor=nobody") == []


def test_the_page_is_paginated(logged) -> None:
    client, organization = logged
    for _ in range(60):
        AuditEntryFactory(organization=organization, action="webhook.create")
    first = client.get("/dashboard/audit/").content.decode()
    assert first.count('data-action="') == 50 and "Page 1 of 2" in first
    second = client.get("/dashboard/audit/?page=2").content.decode()
    assert second.count('data-action="') == 13


def test_a_bad_filter_is_a_400_with_the_reason(logged) -> None:
    client, _ = logged
    response = client.get("/dashboard/audit/?since=2026-05-09&until=2026-05-01")
    assert response.status_code == 400
    assert "The first day comes after the last." in response.content.decode()
    assert client.get("/dashboard/audit/?action=bot.explode").status_code == 400
    export = client.get("/dashboard/audit/export.csv?since=yesterday")
    assert export.status_code == 400 and b"since: Enter a valid date." in export.content


def test_the_csv_export_streams_the_filtered_view_and_is_itself_recorded(logged) -> None:
    client, organization = logged
    response = client.get("/dashboard/audit/export.csv?actor=bob")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["action"] for row in rows] == ["api_key.create", "bot.delete"]
    # A name typed by a user never runs as a spreadsheet formula.
    assert rows[0]["target"] == '\'=HYPERLINK("http://evil")'
    exported = AuditEntry.objects.for_organization(organization).get(action="export.audit_csv")
    assert (exported.actor_label, exported.after) == ("alice", {"query": "actor=bob"})


def test_an_owner_opens_the_page_from_the_navigation(logged) -> None:
    client, _ = logged
    assert 'href="/dashboard/audit/">Audit log</a>' in client.get("/dashboard/").content.decode()


# The API ------------------------------------------------------------------------------------


def test_the_api_lists_the_log_for_a_key_with_audit_read_and_refuses_other_scopes(logged) -> None:
    _, organization = logged
    _, reader = api_key_create(organization=organization, name="SIEM", scopes=["audit:read"])
    _, other = api_key_create(organization=organization, name="Bots", scopes=["bots:read"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {reader}")
    body = api.get("/api/audit/?actor=bob").json()
    assert [entry["action"] for entry in body["results"]] == ["api_key.create", "bot.delete"]
    assert set(body["results"][0]) >= {"created_at", "actor", "action", "target", "before", "after", "ip"}
    assert api.get("/api/audit/?since=not-a-date").status_code == 400
    assert api.post("/api/audit/", {}, format="json").status_code in (403, 405)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    assert api.get("/api/audit/").status_code == 403


def test_the_schema_documents_the_read_only_audit_endpoint() -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert set(schema["paths"]["/api/audit/"]) == {"get"}
    parameters = {parameter["name"] for parameter in schema["paths"]["/api/audit/"]["get"]["parameters"]}
    assert parameters >= {"actor", "action", "target_kind", "since", "until"}


def test_accepting_an_invitation_records_the_member_joining() -> None:
    owner = MembershipFactory(role="owner")
    client = Client()
    client.force_login(owner.user)
    client.post("/dashboard/team/invite", {"email": "sam@example.com", "role": "viewer"})
    invitation = owner.organization.invitations.get()
    sam = MembershipFactory(user__username="sam", user__email="sam@example.com").user
    joining = Client()
    joining.force_login(sam)
    assert joining.post(f"/dashboard/invitations/{invitation.token}/").status_code == 302
    entry = AuditEntry.objects.for_organization(owner.organization).get(action="member.join")
    assert (entry.actor_label, entry.target_label, entry.after) == ("sam", "sam", {"role": "viewer"})


def test_recording_an_unknown_action_is_refused_and_stores_nothing() -> None:
    with pytest.raises(ValueError, match="Unknown audit action 'bot.explode'"):
        audit.record(organization=OrganizationFactory(), action="bot.explode")
    assert not AuditEntry.objects.exists()
