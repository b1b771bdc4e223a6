"""Renaming and deleting a knowledge base from its page, the public address in the API, and
the index version in status.json (issue "The first hour of a new company", item 7).

Regression: a knowledge base could only be renamed or deleted through the API.
"""

from __future__ import annotations

import lxml.html
import pytest
from django.test import Client

from neo_support.models import Membership
from retrieval.models import Chunk, Document, KnowledgeBase
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import document_ingest
from retrieval.services.knowledge_bases import knowledge_base_update
from tests.factories import BotFactory, ChunkFactory, DocumentFactory, KnowledgeBaseFactory, MembershipFactory
from tests.neo_support.test_rest_api import key_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner() -> Membership:
    return MembershipFactory(role="owner")


@pytest.fixture
def knowledge_base(owner: Membership) -> KnowledgeBase:
    return KnowledgeBaseFactory(organization=owner.organization, name="Help centre")


def page_url(knowledge_base: KnowledgeBase) -> str:
    return f"/dashboard/knowledge-bases/{knowledge_base.pk}/"


def browser(membership: Membership) -> Client:
    """A client that checks CSRF as a browser would be checked."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(membership.user)
    return client


def form_fields(client: Client, knowledge_base: KnowledgeBase, action: str) -> dict[str, str]:
    """The page's form for `action`, filled in as the page hands it out (CSRF token included)."""
    page = lxml.html.fromstring(client.get(page_url(knowledge_base)).content)
    (form,) = page.xpath(f"//form[.//input[@name='action'][@value='{action}']]")
    return dict(form.form_values())


# Settings -------------------------------------------------------------------------------------


def test_an_owner_renames_and_describes_a_knowledge_base_from_its_page(
    owner: Membership, knowledge_base: KnowledgeBase
) -> None:
    client = browser(owner)
    fields = form_fields(client, knowledge_base, "settings")
    assert fields["name"] == "Help centre" and not fields.get("public_base_url")
    fields.update(name="  Returns  ", description="What the returns desk knows.", public_base_url="help.example.com")

    response = client.post(page_url(knowledge_base), fields, follow=True)
    assert response.redirect_chain == [(page_url(knowledge_base), 302)]
    assert "Settings saved." in response.content.decode()
    knowledge_base.refresh_from_db()
    assert (knowledge_base.name, knowledge_base.description, knowledge_base.public_base_url) == (
        "Returns",
        "What the returns desk knows.",
        "https://help.example.com",
    )
    page = response.content.decode()
    assert "<h1>Returns</h1>" in page and "Public address of this help centre" in page


def test_settings_without_the_csrf_token_are_refused(owner: Membership, knowledge_base: KnowledgeBase) -> None:
    client = browser(owner)
    fields = form_fields(client, knowledge_base, "settings")
    del fields["csrfmiddlewaretoken"]
    fields["name"] = "Forged"
    assert client.post(page_url(knowledge_base), fields).status_code == 403
    assert KnowledgeBase.objects.get(pk=knowledge_base.pk).name == "Help centre"


def test_a_taken_name_or_a_bad_address_is_shown_on_the_form_and_nothing_is_saved(
    owner: Membership, knowledge_base: KnowledgeBase
) -> None:
    KnowledgeBaseFactory(organization=owner.organization, name="Manuals")
    client = browser(owner)
    fields = form_fields(client, knowledge_base, "settings")

    page = client.post(page_url(knowledge_base), {**fields, "name": "Manuals"}).content.decode()
    assert "Another knowledge base already has this name." in page
    page = client.post(page_url(knowledge_base), {**fields, "public_base_url": "not a web address"}).content.decode()
    assert "Enter a valid URL." in page
    assert 'value="not a web address"' in page  # what was typed is kept
    knowledge_base.refresh_from_db()
    assert (knowledge_base.name, knowledge_base.public_base_url) == ("Help centre", "")


def test_the_same_name_in_another_organization_is_fine(knowledge_base: KnowledgeBase) -> None:
    KnowledgeBaseFactory(name="Manuals")
    assert knowledge_base_update(knowledge_base=knowledge_base, name="Manuals").name == "Manuals"


# Deletion -------------------------------------------------------------------------------------


def test_the_page_says_what_deleting_removes_and_that_bots_keep_working(
    owner: Membership, knowledge_base: KnowledgeBase
) -> None:
    document = DocumentFactory(knowledge_base=knowledge_base)
    ChunkFactory(document=document)
    ChunkFactory(document=document)
    BotFactory(organization=owner.organization, name="Trail helper").knowledge_bases.add(knowledge_base)
    page = " ".join(browser(owner).get(page_url(knowledge_base)).content.decode().split())
    assert (
        'deletes its 1 document, their <span id="chunk-total">2</span> chunks and its search index. '
        "This cannot be undone." in page
    )
    assert "Bots that use it (Trail helper) keep working" in page


def test_an_owner_deletes_a_knowledge_base_after_typing_its_name(
    owner: Membership, knowledge_base: KnowledgeBase, in_process_tasks: None
) -> None:
    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Refunds", text="Refunds take five days.", queue=False
    )
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    bot = BotFactory(organization=owner.organization)
    bot.knowledge_bases.add(knowledge_base)
    client = browser(owner)
    fields = form_fields(client, knowledge_base, "delete")

    wrong = client.post(page_url(knowledge_base), {**fields, "confirm_name": "Help"})
    assert wrong.status_code == 200
    assert "That is not this knowledge base&#x27;s name." in wrong.content.decode()
    assert KnowledgeBase.objects.filter(pk=knowledge_base.pk).exists()

    response = client.post(page_url(knowledge_base), {**fields, "confirm_name": "Help centre"}, follow=True)
    assert response.redirect_chain == [("/dashboard/knowledge-bases/", 302)]
    assert "Help centre was deleted, with its documents and search index." in response.content.decode()
    assert not KnowledgeBase.objects.filter(pk=knowledge_base.pk).exists()
    assert not Document.objects.exists() and not Chunk.objects.exists()
    bot.refresh_from_db()
    assert list(bot.knowledge_bases.all()) == []


def test_a_delete_without_the_csrf_token_is_refused(owner: Membership, knowledge_base: KnowledgeBase) -> None:
    client = browser(owner)
    fields = form_fields(client, knowledge_base, "delete")
    del fields["csrfmiddlewaretoken"]
    assert client.post(page_url(knowledge_base), {**fields, "confirm_name": "Help centre"}).status_code == 403
    assert KnowledgeBase.objects.filter(pk=knowledge_base.pk).exists()


def test_a_viewer_sees_neither_form_and_cannot_rename_or_delete(knowledge_base: KnowledgeBase) -> None:
    viewer = MembershipFactory(organization=knowledge_base.organization, role="viewer")
    client = Client()
    client.force_login(viewer.user)
    page = client.get(page_url(knowledge_base)).content.decode()
    assert "Save settings" not in page and "Delete this knowledge base" not in page

    renamed = client.post(page_url(knowledge_base), {"action": "settings", "name": "Viewer's"})
    deleted = client.post(page_url(knowledge_base), {"action": "delete", "confirm_name": "Help centre"})
    assert (renamed.status_code, deleted.status_code) == (403, 403)
    assert KnowledgeBase.objects.get(pk=knowledge_base.pk).name == "Help centre"


def test_an_unknown_action_is_a_bad_request(owner: Membership, knowledge_base: KnowledgeBase) -> None:
    client = Client()
    client.force_login(owner.user)
    assert client.post(page_url(knowledge_base), {"action": "remove"}).status_code == 400


# The API --------------------------------------------------------------------------------------


def test_the_api_reads_and_writes_the_public_address(knowledge_base: KnowledgeBase) -> None:
    api = key_client(knowledge_base.organization)
    url = f"/api/knowledge-bases/{knowledge_base.pk}/"
    assert api.get(url).json()["public_base_url"] == ""

    response = api.patch(url, {"public_base_url": "https://help.example.com/", "name": "Returns"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["public_base_url"], response.json()["name"]) == ("https://help.example.com/", "Returns")
    knowledge_base.refresh_from_db()
    assert knowledge_base.public_base_url == "https://help.example.com/"

    refused = api.patch(url, {"public_base_url": "not a web address"}, format="json")
    assert refused.status_code == 400


# The index version, live ----------------------------------------------------------------------


def test_status_json_carries_the_index_version(
    owner: Membership, knowledge_base: KnowledgeBase, in_process_tasks: None
) -> None:
    client = browser(owner)
    status_url = f"{page_url(knowledge_base)}status.json"
    assert client.get(status_url).json() == {"index_version": 0, "documents": []}

    document = document_create_from_text(
        knowledge_base=knowledge_base, title="Refunds", text="Refunds take five days.", queue=False
    )
    document_ingest(document=Document.objects.select_related("knowledge_base").get(pk=document.pk))
    status = client.get(status_url).json()
    assert status["index_version"] == 1
    assert [(d["title"], d["status"]) for d in status["documents"]] == [("Refunds", "ready")]
    assert '<span id="index-version">1</span>' in client.get(page_url(knowledge_base)).content.decode()
