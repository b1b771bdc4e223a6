"""Every customer row reaches exactly one Organization, and selectors scope by it; a user
of two organizations sees only the one they switched to, in every page and in the API."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import Client
from rest_framework.test import APIClient

from bots.chat.selectors import conversation_list
from bots.selectors import bot_get, bot_list
from bots.tickets.selectors import ticket_list
from neo_support.models import Organization, SetupRecord
from neo_support.selectors import CURRENT_ORGANIZATION_KEY, membership_current
from neo_support.services import api_key_create
from neo_support.tenancy import TenantModel
from retrieval.selectors import knowledge_base_list
from tests import factories

PROJECT_APPS = ("neo_support", "retrieval", "bots", "workers")
# Rows of the install, not of a customer: the organizations themselves and the one-time setup's record.
INSTALL_WIDE = (Organization, SetupRecord)
FACTORIES = {
    "Membership": factories.MembershipFactory,
    "ApiKey": factories.ApiKeyFactory,
    "Invitation": factories.InvitationFactory,
    "KnowledgeBase": factories.KnowledgeBaseFactory,
    "Document": factories.DocumentFactory,
    "Chunk": factories.ChunkFactory,
    "Bot": factories.BotFactory,
    "Conversation": factories.ConversationFactory,
    "Message": factories.MessageFactory,
    "Ticket": factories.TicketFactory,
    "Feedback": factories.FeedbackFactory,
    "Attachment": factories.AttachmentFactory,
    "WebhookEndpoint": factories.WebhookEndpointFactory,
    "WebhookDelivery": factories.WebhookDeliveryFactory,
    "ModelVersion": factories.ModelVersionFactory,
    "AuditEntry": factories.AuditEntryFactory,
    "RetentionPolicy": factories.RetentionPolicyFactory,
    "RetentionRun": factories.RetentionRunFactory,
    "ExpiredDailyCount": factories.ExpiredDailyCountFactory,
    "PersonErasure": factories.PersonErasureFactory,
    "ModerationExample": factories.ModerationExampleFactory,
}


def project_models() -> list[type]:
    return [model for app in PROJECT_APPS for model in apps.get_app_config(app).get_models()]


def test_every_project_model_is_a_tenant_model_or_install_wide() -> None:
    for model in project_models():
        assert model in INSTALL_WIDE or issubclass(model, TenantModel), model.__name__


def test_every_tenant_model_has_a_factory() -> None:
    tenant_models = {model.__name__ for model in project_models() if model not in INSTALL_WIDE}
    assert tenant_models == set(FACTORIES)


@pytest.mark.django_db
@pytest.mark.parametrize("model_name", sorted(FACTORIES))
def test_for_organization_returns_only_that_organizations_rows(model_name: str) -> None:
    mine, theirs = FACTORIES[model_name](), FACTORIES[model_name]()
    model = type(mine)
    my_organization = model.objects.filter(pk=mine.pk).values_list(model.organization_path, flat=True).get()
    their_organization = model.objects.filter(pk=theirs.pk).values_list(model.organization_path, flat=True).get()
    assert my_organization != their_organization

    mine_seen = set(model.objects.for_organization(my_organization).values_list("pk", flat=True))
    assert mine.pk in mine_seen
    assert theirs.pk not in mine_seen


@pytest.mark.django_db
def test_selectors_never_show_another_organizations_bots_or_conversations() -> None:
    mine, theirs = factories.TicketFactory(), factories.TicketFactory()
    organization = mine.conversation.bot.organization
    their_bot = theirs.conversation.bot

    assert list(bot_list(organization=organization)) == [mine.conversation.bot]
    assert bot_get(organization=organization, bot_id=their_bot.pk) is None
    assert list(conversation_list(organization=organization)) == [mine.conversation]
    assert list(ticket_list(organization=organization)) == [mine]


@pytest.mark.django_db
def test_knowledge_base_list_counts_ready_documents_per_organization() -> None:
    document = factories.DocumentFactory(status="ready")
    factories.DocumentFactory(knowledge_base=document.knowledge_base)
    factories.DocumentFactory()  # another organization's
    [knowledge_base] = knowledge_base_list(organization=document.knowledge_base.organization)
    assert (knowledge_base.document_count, knowledge_base.ready_count) == (2, 1)


# A user of two organizations --------------------------------------------------------------------


def one_of_everything(organization: Organization, word: str) -> None:
    """Rows whose names carry `word`, in `organization`, for every list page and endpoint."""
    bot = factories.BotFactory(organization=organization, name=f"{word} bot")
    factories.KnowledgeBaseFactory(organization=organization, name=f"{word} docs")
    conversation = factories.ConversationFactory(bot=bot, visitor_id=f"{word}-visitor")
    flagged = factories.MessageFactory(conversation=conversation, text=f"{word} question", moderation_action="flag")
    factories.ModerationExampleFactory(message=flagged, text=f"{word} taught")
    factories.TicketFactory(
        conversation=factories.ConversationFactory(bot=bot, channel="email"), subject=f"{word} ticket"
    )
    factories.WebhookEndpointFactory(organization=organization, url=f"https://{word.lower()}.example.com/hook")
    api_key_create(organization=organization, name=f"{word} key")
    factories.MembershipFactory(organization=organization, user__username=f"{word.lower()}-agent", role="agent")


PAGES = [
    "/dashboard/",
    "/dashboard/knowledge-bases/",
    "/dashboard/conversations/",
    "/dashboard/inbox/",
    "/dashboard/moderation/",
    "/dashboard/team/",
    "/dashboard/api-keys/",
    "/dashboard/webhooks/",
    "/dashboard/settings/",
    "/dashboard/audit/",
]
ENDPOINTS = [
    "/api/bots/",
    "/api/knowledge-bases/",
    "/api/conversations/",
    "/api/tickets/",
    "/api/webhooks/",
    "/api/audit/",
]


@pytest.fixture
def member_of_two() -> tuple[Organization, Organization, object]:
    first = factories.MembershipFactory(organization__name="Alpha Ltd", role="owner")
    second = factories.MembershipFactory(organization__name="Beta Ltd", user=first.user, role="owner")
    one_of_everything(first.organization, "Alpha")
    one_of_everything(second.organization, "Beta")
    return first.organization, second.organization, first.user


@pytest.mark.django_db
def test_without_a_choice_a_user_of_two_organizations_acts_in_the_oldest(member_of_two) -> None:
    first, second, user = member_of_two
    assert membership_current(user=user, session={}).organization == first
    assert membership_current(user=user, session=None).organization == first
    assert membership_current(user=user, session={CURRENT_ORGANIZATION_KEY: second.pk}).organization == second
    # An organization the user is not (or no longer) a member of is ignored.
    stranger = factories.OrganizationFactory()
    assert membership_current(user=user, session={CURRENT_ORGANIZATION_KEY: stranger.pk}).organization == first


@pytest.mark.django_db
@pytest.mark.parametrize("acting", ["Alpha", "Beta"])
def test_a_user_of_two_organizations_sees_only_the_one_switched_to_on_every_page(member_of_two, acting) -> None:
    first, second, user = member_of_two
    organization, other = (first, "Beta") if acting == "Alpha" else (second, "Alpha")
    client = Client()
    client.force_login(user)
    assert client.post("/dashboard/organizations/switch", {"organization": organization.pk}).status_code == 302
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        assert organization.name in page, path  # in the header's switcher, at least
        main = page.split("<main>", 1)[1]
        assert other not in main and other.lower() not in main, path
    seen = " ".join(client.get(path).content.decode().split("<main>", 1)[1] for path in PAGES)
    for word in (
        f"{acting} bot",
        f"{acting} docs",
        f"{acting} ticket",
        f"{acting.lower()}.example.com",
        f"{acting} key",
        f"{acting} taught",
    ):
        assert word in seen, word


@pytest.mark.django_db
@pytest.mark.parametrize("acting", ["Alpha", "Beta"])
def test_a_user_of_two_organizations_gets_only_the_one_switched_to_from_the_api(member_of_two, acting) -> None:
    first, second, user = member_of_two
    organization, other = (first, "Beta") if acting == "Alpha" else (second, "Alpha")
    client = APIClient()
    client.force_login(user)
    client.post("/dashboard/organizations/switch", {"organization": organization.pk})
    for path in ENDPOINTS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.json()["count"] >= 1, path
        body = response.content.decode()
        assert other not in body and other.lower() not in body, path
    created = client.post("/api/knowledge-bases/", {"name": f"{acting} new docs"}, format="json")
    assert created.status_code == 201
    assert organization.knowledge_bases.filter(name=f"{acting} new docs").exists()


@pytest.mark.django_db
def test_an_api_key_acts_for_its_own_organization_whatever_its_creator_switched_to(member_of_two) -> None:
    first, second, user = member_of_two
    _, raw_key = api_key_create(organization=first, name="Alpha integration", created_by=user)
    client = APIClient()
    client.force_login(user)
    client.post("/dashboard/organizations/switch", {"organization": second.pk})
    client.logout()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    names = {bot["name"] for bot in client.get("/api/bots/").json()["results"]}
    assert names == {"Alpha bot"}
