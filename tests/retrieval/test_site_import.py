"""Importing a whole site into a knowledge base, against a real HTTP server on loopback."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from neo_support.services import api_key_create
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.search import search
from retrieval.services.documents import DocumentRejected, document_create_from_url
from retrieval.services.site_import import site_import_run
from tests.factories import KnowledgeBaseFactory
from tests.retrieval.test_web_import import LocalSite, serving

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_tasks")]


@pytest.fixture
def help_site():
    with serving() as site:
        site.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
        site.page(
            "/",
            "<html><head><title>Help</title></head><body><h1>Help</h1><p>Start here.</p>"
            "<a href='/shipping'>Shipping</a> <a href='/private/notes'>Notes</a> <a href='/gone'>Gone</a>"
            "</body></html>",
        )
        site.page("/shipping", "<h1>Shipping</h1><h2 id='abroad'>Abroad</h2><p>Parcels to Norway take six days.</p>")
        site.page("/private/notes", "<h1>Secret</h1><p>Staff only.</p>")
        yield site


def test_a_site_import_makes_one_searchable_document_per_allowed_page(settings, help_site: LocalSite) -> None:
    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True  # the test site is on loopback
    knowledge_base = KnowledgeBaseFactory()
    imported, failed = site_import_run(knowledge_base=knowledge_base, url=help_site.url("/"), max_pages=10)

    assert (imported, failed) == (2, 1)  # /gone is a 404; /private/ is disallowed by robots.txt
    titles = set(knowledge_base.documents.values_list("title", flat=True))
    assert titles == {"Help", "Shipping"}
    assert "/private/notes" not in help_site.requests
    knowledge_base.refresh_from_db()
    [hit] = search(knowledge_bases=[knowledge_base], query="delivery time to Norway", k=1)
    assert hit.document_title == "Shipping" and hit.location == "#abroad"


def test_importing_again_updates_pages_instead_of_duplicating_them(settings, help_site: LocalSite) -> None:
    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True
    knowledge_base = KnowledgeBaseFactory()
    site_import_run(knowledge_base=knowledge_base, url=help_site.url("/"), max_pages=10)
    help_site.page("/shipping", "<h1>Shipping</h1><p>Parcels to Norway now take three days.</p>")
    site_import_run(knowledge_base=knowledge_base, url=help_site.url("/"), max_pages=10)
    assert knowledge_base.documents.count() == 2
    knowledge_base.refresh_from_db()
    [hit] = search(knowledge_bases=[knowledge_base], query="Norway parcels", k=1)
    assert "three days" in hit.text


def test_a_page_served_at_two_addresses_is_kept_once(settings, help_site: LocalSite) -> None:
    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True
    shipping = "<h1>Shipping</h1><p>Parcels to Norway take six days.</p>"
    help_site.page("/shipping.html", shipping)
    help_site.page("/shipping", shipping)
    help_site.page("/", "<h1>Help</h1><p>Start here.</p><a href='/shipping'>S</a> <a href='/shipping.html'>S</a>")
    knowledge_base = KnowledgeBaseFactory()

    imported, failed = site_import_run(knowledge_base=knowledge_base, url=help_site.url("/"), max_pages=10)

    assert (imported, failed) == (2, 0)
    assert sorted(knowledge_base.documents.values_list("title", flat=True)) == ["Help", "Shipping"]
    knowledge_base.refresh_from_db()
    hits = search(knowledge_bases=[knowledge_base], query="Parcels to Norway", k=5)
    assert [hit.document_title for hit in hits].count("Shipping") == 1


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/", "http://10.0.0.1/help", "http://169.254.169.254/latest/meta-data/", "ftp://example.com/"],
)
def test_private_addresses_and_other_schemes_are_refused_up_front(url: str) -> None:
    knowledge_base = KnowledgeBaseFactory()
    with pytest.raises(DocumentRejected):
        document_create_from_url(knowledge_base=knowledge_base, url=url)
    assert not knowledge_base.documents.exists()


def test_the_api_starts_an_import_and_refuses_a_private_address(settings, help_site: LocalSite) -> None:
    knowledge_base = KnowledgeBaseFactory()
    _, raw_key = api_key_create(organization=knowledge_base.organization, name="t")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    url = f"/api/knowledge-bases/{knowledge_base.pk}/imports/"

    refused = client.post(url, {"url": help_site.url("/")}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "rejected"

    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True
    accepted = client.post(url, {"url": help_site.url("/"), "max_pages": 5}, format="json")
    assert accepted.status_code == 202
    wait_for_in_process_tasks(timeout=120)
    assert set(knowledge_base.documents.values_list("status", flat=True)) == {"ready"}
