"""Every customer row reaches exactly one Organization, and selectors scope by it."""

from __future__ import annotations

import pytest
from django.apps import apps

from bots.chat.selectors import conversation_list
from bots.selectors import bot_get, bot_list
from bots.tickets.selectors import ticket_list
from neo_support.models import Organization
from neo_support.tenancy import TenantModel
from retrieval.selectors import knowledge_base_list
from tests import factories

PROJECT_APPS = ("neo_support", "retrieval", "bots", "workers")
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
}


def project_models() -> list[type]:
    return [model for app in PROJECT_APPS for model in apps.get_app_config(app).get_models()]


def test_every_project_model_is_a_tenant_model_or_the_organization_itself() -> None:
    for model in project_models():
        assert model is Organization or issubclass(model, TenantModel), model.__name__


def test_every_tenant_model_has_a_factory() -> None:
    tenant_models = {model.__name__ for model in project_models() if model is not Organization}
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
