"""The organization's dashboard pages: team and invitations (by email, accepted once,
expiring, renewed), roles with the last owner protected, API keys shown once, webhooks,
settings; who may change what, and other organizations' rows answering 404."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from bots.models import WebhookEndpoint
from neo_support.models import ApiKey, Invitation, Membership, Role
from neo_support.services import (
    TeamError,
    TeamForbidden,
    api_key_authenticate,
    api_key_create,
    invitation_accept,
    invitation_create,
    membership_change_role,
)
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://93.184.216.34/neo-hook"  # an address literal: no DNS lookup in tests


def logged_in(client, role: str = "admin", organization=None) -> Membership:  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role=role, **({"organization": organization} if organization else {}))
    client.force_login(membership.user)
    return membership


def accept_link(body: str) -> str:
    found = re.search(r"http://testserver(/dashboard/invitations/[\w-]+/)", body)
    assert found, body
    return found.group(1)


# Invitations -----------------------------------------------------------------


def test_an_admin_invites_by_email_and_the_email_carries_the_absolute_accept_link(client, settings) -> None:
    settings.DEFAULT_FROM_EMAIL = "Acme Support <help@acme.example>"
    admin = logged_in(client)
    response = client.post("/dashboard/team/invite", {"email": "Newcomer@Example.com", "role": "agent"}, follow=True)

    assert response.status_code == 200 and "Invitation sent to newcomer@example.com" in response.content.decode()
    invitation = Invitation.objects.get()
    assert (invitation.organization, invitation.email, invitation.role) == (
        admin.organization,
        "newcomer@example.com",
        "agent",
    )
    assert invitation.invited_by == admin.user
    assert timedelta(days=6, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=7)
    [email] = mail.outbox
    assert email.to == ["newcomer@example.com"] and email.from_email == "Acme Support <help@acme.example>"
    assert admin.organization.name in email.subject
    assert f"http://testserver/dashboard/invitations/{invitation.token}/" in email.body
    assert admin.user.username in email.body and "agent" in email.body
    assert "newcomer@example.com" in response.content.decode()  # listed as pending


def test_the_invitee_logs_in_sees_the_invitation_and_accepts_it_once(client) -> None:
    admin = logged_in(client)
    client.post("/dashboard/team/invite", {"email": "sam@example.com", "role": "viewer"})
    link = accept_link(mail.outbox[0].body)
    client.logout()

    # The invited address has an account, so the signed-out link asks to log in (an address
    # without one signs up from the link: tests/neo_support/test_sign_up.py).
    sam = UserFactory(username="sam", email="sam@example.com")
    response = client.get(link)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={link}"

    client.force_login(sam)
    page = client.get(link).content.decode()
    assert admin.organization.name in page and "viewer" in page and "Accept" in page

    response = client.post(link)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    membership = Membership.objects.get(user=sam)
    assert (membership.organization, membership.role) == (admin.organization, Role.VIEWER)
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == sam and invitation.accepted_at is not None

    again = client.post(link)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    someone_else = UserFactory()
    client.force_login(someone_else)
    assert client.get(link).status_code == 410
    assert not Membership.objects.filter(user=someone_else).exists()


def test_an_expired_invitation_is_refused_with_a_clear_message(client, organization) -> None:
    invitation = invitation_create(organization=organization, email="late@example.com", role="agent")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(UserFactory())

    response = client.post(f"/dashboard/invitations/{invitation.token}/")
    assert response.status_code == 410 and "expired" in response.content.decode()
    assert not Membership.objects.filter(organization=organization).exists()
    assert client.get("/dashboard/invitations/no-such-token/").status_code == 404


def test_inviting_a_pending_address_again_renews_it_and_retires_the_old_link(client) -> None:
    logged_in(client)
    client.post("/dashboard/team/invite", {"email": "pat@example.com", "role": "viewer"})
    first = Invitation.objects.get()
    Invitation.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(days=1))
    client.post("/dashboard/team/invite", {"email": "PAT@example.com", "role": "agent"})

    renewed = Invitation.objects.get()  # still one row
    assert renewed.pk == first.pk and renewed.token != first.token and renewed.role == "agent"
    assert renewed.is_pending
    assert len(mail.outbox) == 2 and renewed.token in mail.outbox[1].body
    client.force_login(UserFactory())
    assert client.get(f"/dashboard/invitations/{first.token}/").status_code == 404
    assert client.post(f"/dashboard/invitations/{renewed.token}/").status_code == 302


def test_a_member_cannot_be_invited_and_bad_input_keeps_what_was_typed(client) -> None:
    admin = logged_in(client)
    MembershipFactory(organization=admin.organization, user=UserFactory(email="kim@example.com"), role="agent")

    response = client.post("/dashboard/team/invite", {"email": "kim@example.com", "role": "viewer"})
    assert response.status_code == 400 and "already a member" in response.content.decode()
    assert 'value="kim@example.com"' in response.content.decode()

    response = client.post("/dashboard/team/invite", {"email": "not an address", "role": "viewer"})
    page = response.content.decode()
    assert response.status_code == 400 and "Enter a valid email address" in page and 'value="not an address"' in page
    assert not Invitation.objects.exists() and not mail.outbox


def test_only_an_owner_invites_an_owner(client) -> None:
    admin = logged_in(client)
    response = client.post("/dashboard/team/invite", {"email": "boss@example.com", "role": "owner"})
    assert response.status_code == 400 and not Invitation.objects.exists()  # not one of the admin's choices
    with pytest.raises(TeamForbidden):
        invitation_create(
            organization=admin.organization, email="boss@example.com", role="owner", invited_by=admin.user
        )
    with pytest.raises(TeamError, match="Unknown role"):
        invitation_create(organization=admin.organization, email="boss@example.com", role="emperor")

    owner = logged_in(client, "owner", admin.organization)
    assert client.post("/dashboard/team/invite", {"email": "boss@example.com", "role": "owner"}).status_code == 302
    assert Invitation.objects.get().invited_by == owner.user


def test_accepting_never_changes_an_existing_members_role(organization) -> None:
    owner = MembershipFactory(organization=organization, role="owner")
    invitation = invitation_create(organization=organization, email="other@example.com", role="viewer")
    with pytest.raises(TeamError, match="already a member"):
        invitation_accept(token=invitation.token, user=owner.user)
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_a_revoked_invitation_link_stops_working(client) -> None:
    admin = logged_in(client)
    invitation = invitation_create(organization=admin.organization, email="x@example.com", role="agent")
    response = client.post(f"/dashboard/team/invitations/{invitation.pk}/revoke")
    assert response.status_code == 302 and not Invitation.objects.exists()
    client.force_login(UserFactory())
    assert client.get(f"/dashboard/invitations/{invitation.token}/").status_code == 404


# Roles -----------------------------------------------------------------------


def test_the_team_page_lists_members_and_pending_invitations(client) -> None:
    admin = logged_in(client)
    agent = MembershipFactory(organization=admin.organization, role="agent")
    invitation_create(organization=admin.organization, email="soon@example.com", role="viewer")
    stranger = MembershipFactory()

    page = client.get("/dashboard/team/").content.decode()
    assert admin.user.username in page and agent.user.username in page and "soon@example.com" in page
    assert stranger.user.username not in page
    assert "Send invitation" in page and f"/dashboard/team/members/{agent.pk}" in page

    logged_in(client, "viewer", admin.organization)
    page = client.get("/dashboard/team/").content.decode()
    assert agent.user.username in page and "soon@example.com" in page
    assert "Send invitation" not in page and "/dashboard/team/members/" not in page


def test_an_admin_changes_roles_but_not_the_owner_role(client) -> None:
    admin = logged_in(client)
    agent = MembershipFactory(organization=admin.organization, role="agent")
    owner = MembershipFactory(organization=admin.organization, role="owner")

    assert client.post(f"/dashboard/team/members/{agent.pk}", {"action": "role", "role": "viewer"}).status_code == 302
    agent.refresh_from_db()
    assert agent.role == "viewer"

    response = client.post(f"/dashboard/team/members/{agent.pk}", {"action": "role", "role": "owner"})
    assert response.status_code == 403 and "Only an owner" in response.content.decode()
    response = client.post(f"/dashboard/team/members/{owner.pk}", {"action": "role", "role": "agent"})
    assert response.status_code == 403
    assert client.post(f"/dashboard/team/members/{owner.pk}", {"action": "remove"}).status_code == 403
    agent.refresh_from_db()
    owner.refresh_from_db()
    assert (agent.role, owner.role) == ("viewer", "owner")


def test_the_last_owner_can_be_neither_demoted_nor_removed(client) -> None:
    owner = logged_in(client, "owner")
    url = f"/dashboard/team/members/{owner.pk}"

    response = client.post(url, {"action": "role", "role": "admin"})
    assert response.status_code == 400 and "at least one owner" in response.content.decode()
    assert client.post(url, {"action": "remove"}).status_code == 400
    owner.refresh_from_db()
    assert owner.role == "owner"

    second = MembershipFactory(organization=owner.organization, role="admin")
    assert client.post(f"/dashboard/team/members/{second.pk}", {"action": "role", "role": "owner"}).status_code == 302
    assert client.post(url, {"action": "role", "role": "admin"}).status_code == 302  # now another owner remains
    owner.refresh_from_db()
    assert owner.role == "admin"
    second.refresh_from_db()
    with pytest.raises(TeamError, match="at least one owner"):
        membership_change_role(membership=second, role="viewer", by=second)


def test_an_owner_removes_a_member(client) -> None:
    owner = logged_in(client, "owner")
    agent = MembershipFactory(organization=owner.organization, role="agent")
    assert client.post(f"/dashboard/team/members/{agent.pk}", {"action": "remove"}).status_code == 302
    assert not Membership.objects.filter(pk=agent.pk).exists()


# API keys --------------------------------------------------------------------


def test_a_new_api_key_is_shown_once_and_authenticates(client) -> None:
    admin = logged_in(client)
    response = client.post("/dashboard/api-keys/", {"name": "CRM sync", "scopes": ["tickets:read", "tickets:write"]})
    page = response.content.decode()

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    raw = re.search(r'<code id="raw-key">(neo_[^<]+)</code>', page).group(1)  # type: ignore[union-attr]
    api_key = api_key_authenticate(raw_key=raw)
    assert api_key is not None and api_key.organization == admin.organization
    assert (api_key.name, api_key.scopes, api_key.created_by) == (
        "CRM sync",
        ["tickets:read", "tickets:write"],
        admin.user,
    )

    listing = client.get("/dashboard/api-keys/").content.decode()
    assert raw not in listing and "CRM sync" in listing and api_key.prefix in listing and "tickets:write" in listing


def test_an_api_key_needs_a_scope_and_keeps_the_typed_name(client) -> None:
    logged_in(client)
    response = client.post("/dashboard/api-keys/", {"name": "Half done"})
    page = response.content.decode()
    assert response.status_code == 400 and "Choose at least one scope" in page and 'value="Half done"' in page
    response = client.post("/dashboard/api-keys/", {"name": "Odd", "scopes": ["everything:all"]})
    assert response.status_code == 400 and not ApiKey.objects.exists()


def test_a_revoked_api_key_no_longer_authenticates(client) -> None:
    admin = logged_in(client)
    api_key, raw = api_key_create(organization=admin.organization, name="Old", scopes=["bots:read"])
    assert client.post(f"/dashboard/api-keys/{api_key.pk}/revoke").status_code == 302
    assert api_key_authenticate(raw_key=raw) is None
    assert "Revoked" in client.get("/dashboard/api-keys/").content.decode()


def test_agents_and_viewers_may_not_see_api_keys(client) -> None:
    for role in ("agent", "viewer"):
        member = logged_in(client, role)
        api_key, _ = api_key_create(organization=member.organization, name="Secretish")
        assert client.get("/dashboard/api-keys/").status_code == 403
        assert client.post("/dashboard/api-keys/", {"name": "Mine", "scopes": ["bots:read"]}).status_code == 403
        assert client.post(f"/dashboard/api-keys/{api_key.pk}/revoke").status_code == 403
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 2


# Webhooks --------------------------------------------------------------------


def test_an_admin_adds_pauses_and_deletes_a_webhook(client, settings) -> None:
    admin = logged_in(client)
    response = client.post("/dashboard/webhooks/", {"url": PUBLIC_URL, "events": ["ticket.created"]})
    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200 and endpoint.secret in response.content.decode()
    assert (endpoint.organization, endpoint.url, endpoint.events) == (
        admin.organization,
        PUBLIC_URL,
        ["ticket.created"],
    )

    WebhookDeliveryFactory(endpoint=endpoint, status="failed", attempts=8, last_status_code=500)
    page = client.get("/dashboard/webhooks/").content.decode()
    assert endpoint.secret not in page and PUBLIC_URL in page and "Failed" in page and "HTTP 500" in page

    assert client.post(f"/dashboard/webhooks/{endpoint.pk}/active", {"active": "0"}).status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert client.post(f"/dashboard/webhooks/{endpoint.pk}/delete").status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_a_refused_webhook_url_keeps_what_was_typed(client, settings) -> None:
    settings.NEO_WEBHOOK_ALLOW_PRIVATE = False
    logged_in(client)
    response = client.post("/dashboard/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["ticket.created"]})
    page = response.content.decode()
    assert response.status_code == 400 and "private or internal address" in page
    assert 'value="http://127.0.0.1:9/hook"' in page and not WebhookEndpoint.objects.exists()


def test_viewers_read_webhooks_but_cannot_change_them(client) -> None:
    viewer = logged_in(client, "viewer")
    endpoint = WebhookEndpointFactory(organization=viewer.organization)
    page = client.get("/dashboard/webhooks/").content.decode()
    assert endpoint.url in page and "Add an endpoint" not in page and endpoint.secret not in page
    assert client.post("/dashboard/webhooks/", {"url": PUBLIC_URL}).status_code == 403
    assert client.post(f"/dashboard/webhooks/{endpoint.pk}/delete").status_code == 403
    assert client.post(f"/dashboard/webhooks/{endpoint.pk}/active", {"active": "0"}).status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.active


# Settings --------------------------------------------------------------------


def test_an_admin_renames_the_organization_and_bad_input_keeps_what_was_typed(client) -> None:
    admin = logged_in(client)
    organization = admin.organization
    slug = organization.slug
    page = client.get("/dashboard/settings/").content.decode()
    assert slug in page and "Generation model" in page and "Sent from" in page

    too_long = "N" * 201
    response = client.post("/dashboard/settings/", {"name": too_long})
    assert response.status_code == 400 and f'value="{too_long}"' in response.content.decode()
    assert "at most 200 characters" in response.content.decode()
    assert client.post("/dashboard/settings/", {"name": "   "}).status_code == 400

    assert client.post("/dashboard/settings/", {"name": " Acme Help ", "slug": "hijack"}).status_code == 302
    organization.refresh_from_db()
    assert (organization.name, organization.slug) == ("Acme Help", slug)


def served_models_listed(client) -> list[str]:  # type: ignore[no-untyped-def]
    page = client.get("/dashboard/settings/").content.decode()
    return re.findall(r'<dl class="summary served-model">(.*?)</dl>', page, re.S)


def test_the_settings_page_lists_every_served_model_with_its_queue(client, settings) -> None:
    from neo_support.model_queues import generation_queue

    logged_in(client)
    settings.NEO_TASKS_IN_PROCESS = True
    settings.NEO_MODEL, settings.NEO_MODELS = "/nonexistent/default-model", ["/nonexistent/second-model"]
    served = served_models_listed(client)
    assert len(served) == 2
    assert "/nonexistent/default-model" in served[0] and "(the default)" in served[0]
    assert "<code>generation</code>" in served[0]
    queue = generation_queue("/nonexistent/second-model", default_model="/nonexistent/default-model")
    assert "/nonexistent/second-model" in served[1] and f"<code>{queue}</code>" in served[1]
    assert "unavailable" in served[1] and "(the default)" not in served[1]
    settings.NEO_MODELS = []
    [alone] = served_models_listed(client)
    assert "/nonexistent/default-model" in alone and "Queue" not in alone


def test_viewers_read_settings_agents_do_not_and_neither_saves_them(client) -> None:
    for role in ("viewer", "agent"):
        member = logged_in(client, role)
        page = client.get("/dashboard/settings/")
        if role == "agent":
            assert page.status_code == 403
        else:
            text = page.content.decode()
            assert member.organization.name in text and "<form" not in text.split("</header>")[1]
        assert client.post("/dashboard/settings/", {"name": "Taken over"}).status_code == 403
        member.organization.refresh_from_db()
        assert member.organization.name != "Taken over"


# Tenancy and access ----------------------------------------------------------


def test_another_organizations_rows_answer_404(client) -> None:
    logged_in(client, "owner")
    other = OrganizationFactory()
    their_member = MembershipFactory(organization=other, role="agent")
    their_invitation = invitation_create(organization=other, email="t@example.com", role="agent")
    their_key, _ = api_key_create(organization=other, name="Theirs")
    their_endpoint = WebhookEndpointFactory(organization=other)

    assert client.post(f"/dashboard/team/members/{their_member.pk}", {"action": "remove"}).status_code == 404
    assert client.post(f"/dashboard/team/invitations/{their_invitation.pk}/revoke").status_code == 404
    assert client.post(f"/dashboard/api-keys/{their_key.pk}/revoke").status_code == 404
    assert client.post(f"/dashboard/webhooks/{their_endpoint.pk}/delete").status_code == 404
    assert client.post(f"/dashboard/webhooks/{their_endpoint.pk}/active", {"active": "0"}).status_code == 404
    assert (
        Membership.objects.filter(pk=their_member.pk).exists()
        and Invitation.objects.filter(organization=other).exists()
    )
    their_key.refresh_from_db()
    assert their_key.is_active and WebhookEndpoint.objects.filter(pk=their_endpoint.pk).exists()


def test_agents_and_viewers_may_not_change_the_team(client) -> None:
    for role in ("agent", "viewer"):
        member = logged_in(client, role)
        colleague = MembershipFactory(organization=member.organization, role="viewer")
        invitation = invitation_create(organization=member.organization, email=f"{role}@example.com", role="agent")
        assert client.post("/dashboard/team/invite", {"email": "x@example.com", "role": "agent"}).status_code == 403
        assert (
            client.post(f"/dashboard/team/members/{colleague.pk}", {"action": "role", "role": "admin"}).status_code
            == 403
        )
        assert client.post(f"/dashboard/team/members/{colleague.pk}", {"action": "remove"}).status_code == 403
        assert client.post(f"/dashboard/team/invitations/{invitation.pk}/revoke").status_code == 403
        colleague.refresh_from_db()
        assert colleague.role == "viewer" and Invitation.objects.filter(pk=invitation.pk).exists()
    assert not mail.outbox


def test_the_pages_need_a_login_and_an_organization(client) -> None:
    OrganizationFactory()  # someone else's: with none at all, the dashboard leads to /setup/
    for url in ("/dashboard/team/", "/dashboard/api-keys/", "/dashboard/webhooks/", "/dashboard/settings/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=")
    client.force_login(UserFactory())
    assert b"not a member of any organization" in client.get("/dashboard/team/").content
    logged_in(client)
    assert client.get("/dashboard/team/invite").status_code == 405
