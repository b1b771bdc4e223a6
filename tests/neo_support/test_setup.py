"""First-run setup (/setup/): an install with no organization leads every dashboard page
there; it creates the organization, its owner (a new account or the signed-in user) and,
if asked, a first knowledge base and bot; it never runs twice, even when two visitors
race for it (threads on this run's database: SQLite, or Postgres under DATABASE_URL)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.test import Client

from bots.models import AnswerMode, Bot
from neo_support import setup as setup_service
from neo_support.access import no_organization
from neo_support.models import Membership, Organization, Role, SetupRecord
from neo_support.organizations import organization_delete
from neo_support.selectors import CURRENT_ORGANIZATION_KEY, setup_open
from neo_support.setup import FirstKnowledgeBase, OwnerAccount, SetupClosed, SetupError, setup_complete
from retrieval.models import Document, DocumentStatus, KnowledgeBase
from tests.factories import OrganizationFactory, UserFactory

PASSWORD = "a long enough passphrase 42"
REFUNDS = b"# Refunds\n\n## How long refunds take\n\nRefunds reach your card within five working days.\n"


def owner_fields(username: str = "kim", **overrides: str) -> dict[str, str]:
    fields = {
        "organization_name": "Tallyho",
        "knowledge_base_name": "Help centre",  # filled in by the page
        "owner-username": username,
        "owner-email": f"{username}@tallyho.example",
        "owner-password1": PASSWORD,
        "owner-password2": PASSWORD,
    }
    fields.update(overrides)
    return fields


def nothing_created() -> bool:
    return not (
        Organization.objects.exists()
        or SetupRecord.objects.exists()
        or Membership.objects.exists()
        or KnowledgeBase.objects.exists()
        or Bot.objects.exists()
    )


@pytest.fixture
def no_model(settings) -> None:
    """No generation model on this server, as on a fresh install: new bots quote."""
    from workers.generation.loading import holder

    settings.NEO_MODEL = "/nonexistent/model"
    holder.reset()


# Leading to the page ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/dashboard/", "/dashboard/bots/new", "/dashboard/team/", "/dashboard/x/"])
def test_every_dashboard_page_leads_a_stranger_to_setup_on_an_install_without_an_organization(client, path) -> None:
    response = client.get(path)
    assert response.status_code == 302 and response["Location"] == "/setup/"


@pytest.mark.django_db
def test_a_createsuperuser_user_reaches_the_setup_page_instead_of_a_dead_end(client, django_user_model) -> None:
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    response = client.get("/dashboard/", follow=True)
    assert response.redirect_chain == [("/setup/", 302)]
    page = response.content.decode()
    assert "You are signed in as <strong>root</strong>: you will be the owner." in page
    assert 'name="owner-username"' not in page


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz/live", "/api/bots/", "/demo/", "/widget.js"])
def test_pages_outside_the_dashboard_are_not_redirected(client, path) -> None:
    assert client.get(path).status_code in (200, 401, 403, 404)


@pytest.mark.django_db
def test_the_no_organization_page_points_to_setup_while_the_install_has_none(rf) -> None:
    # Every dashboard URL redirects first; the page still says so if it is ever reached.
    request = rf.get("/dashboard/")
    request.user = UserFactory()
    request.session = {}
    response = no_organization(request)
    assert response.status_code == 403
    page = response.content.decode()
    assert 'href="/setup/"' in page and "Ask an owner" not in page


@pytest.mark.django_db
def test_once_an_organization_exists_a_user_outside_it_gets_the_usual_message(client) -> None:
    OrganizationFactory()
    client.force_login(UserFactory())
    response = client.get("/dashboard/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "not a member of any organization" in page and "/setup/" not in page


# Doing it -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_setup_creates_the_owner_the_organization_a_knowledge_base_from_an_upload_and_a_bot(client, no_model) -> None:
    assert client.get("/setup/").status_code == 200
    upload = SimpleUploadedFile("refunds.md", REFUNDS, content_type="text/markdown")
    response = client.post(
        "/setup/",
        owner_fields(knowledge_base_name="Help centre", document=upload, bot_name="Tally"),  # type: ignore[arg-type]
    )

    bot = Bot.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/dashboard/bots/{bot.pk}/"
    owner = get_user_model().objects.get(username="kim")
    assert owner.email == "kim@tallyho.example" and owner.check_password(PASSWORD)
    membership = Membership.objects.get()
    assert (membership.user, membership.role, membership.organization.name) == (owner, Role.OWNER, "Tallyho")
    organization = membership.organization
    knowledge_base = KnowledgeBase.objects.get(organization=organization)
    document = Document.objects.get(knowledge_base=knowledge_base)
    assert (knowledge_base.name, document.title, document.status) == ("Help centre", "refunds", DocumentStatus.PENDING)
    assert bot.organization == organization and list(bot.knowledge_bases.all()) == [knowledge_base]
    assert bot.answer_mode == AnswerMode.EXTRACTIVE  # no model on this server: it quotes
    record = SetupRecord.objects.get()
    assert (record.organization, record.owner) == (organization, owner)

    # The owner is signed in, acting in the new organization, and sees its bot's page.
    assert client.session["_auth_user_id"] == str(owner.pk)
    assert client.session[CURRENT_ORGANIZATION_KEY] == organization.pk
    page = client.get(response["Location"]).content.decode()
    assert "Tallyho is ready, and you are its owner." in page and "Tally" in page


@pytest.mark.django_db
def test_the_new_owner_signs_in_again_later_with_the_password_chosen(client) -> None:
    client.post("/setup/", owner_fields())
    client.logout()
    for login in ("kim", "kim@tallyho.example"):
        response = Client().post("/accounts/login/", {"login": login, "password": PASSWORD}, follow=True)
        assert response.redirect_chain[-1][0] == "/dashboard/", login
        assert "Tallyho" in response.content.decode()
    if apps.is_installed("allauth.account"):
        from allauth.account.models import EmailAddress

        address = EmailAddress.objects.get(user__username="kim")
        assert (address.email, address.primary, address.verified) == ("kim@tallyho.example", True, True)


@pytest.mark.django_db
def test_setup_imports_the_first_document_from_a_web_address(client, settings, no_model) -> None:
    settings.NEO_WEB_IMPORT_ALLOW_PRIVATE = True  # 127.0.0.1 stands in for the company's site
    response = client.post("/setup/", owner_fields(url="http://127.0.0.1:9/faq"))
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    document = Document.objects.get()
    assert document.source_url == "http://127.0.0.1:9/faq" and document.knowledge_base.name == "Help centre"
    assert not Bot.objects.exists()


@pytest.mark.django_db
def test_only_the_organization_and_its_owner_are_required(client) -> None:
    response = client.post("/setup/", owner_fields())
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert Organization.objects.get().name == "Tallyho"
    assert not KnowledgeBase.objects.exists() and not Bot.objects.exists()
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_the_signed_in_createsuperuser_user_becomes_the_owner(client, django_user_model) -> None:
    admin = django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    client.force_login(admin)
    response = client.post("/setup/", {"organization_name": "Tallyho", "bot_name": "Tally"})
    assert response.status_code == 302
    assert django_user_model.objects.count() == 1
    assert Membership.objects.get().user == admin and Membership.objects.get().role == Role.OWNER
    assert list(Bot.objects.get().knowledge_bases.all()) == []
    assert client.get("/dashboard/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (owner_fields(**{"owner-password1": "12345678", "owner-password2": "12345678"}), "This password is too common"),
        (owner_fields(**{"owner-password1": "short", "owner-password2": "short"}), "This password is too short"),
        (owner_fields(**{"owner-password2": "something else"}), "The two password fields didn"),
        (owner_fields(**{"owner-email": ""}), "This field is required"),
        (owner_fields(organization_name=" "), "This field is required"),
        (owner_fields(url="ftp://example.com/faq"), "Only http and https addresses can be imported"),
        (owner_fields(url="http://10.0.0.1/faq"), "private/internal address"),
        (owner_fields(knowledge_base_name="", url="http://93.184.216.34/faq"), "Name the knowledge base"),
    ],
)
def test_a_refused_form_says_why_keeps_what_was_typed_and_creates_nothing(client, fields, error) -> None:
    response = client.post("/setup/", fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert error in page.replace("&#x27;", "'")
    assert 'value="kim"' in page
    assert nothing_created() and not get_user_model().objects.exists()


@pytest.mark.django_db
def test_an_unsupported_upload_is_refused_and_nothing_is_created(client) -> None:
    upload = SimpleUploadedFile("tool.exe", b"MZ\x90\x00", content_type="application/octet-stream")
    response = client.post("/setup/", owner_fields(document=upload))  # type: ignore[arg-type]
    assert response.status_code == 400
    assert "Unsupported file type" in response.content.decode()
    assert nothing_created()


@pytest.mark.django_db
def test_a_taken_username_is_refused_in_any_letter_case(client) -> None:
    UserFactory(username="kim")
    response = client.post("/setup/", owner_fields(username="KIM"))
    assert response.status_code == 400
    assert "A user with that username already exists." in response.content.decode()
    assert nothing_created()


@pytest.mark.django_db
def test_a_refusal_inside_the_service_rolls_everything_back() -> None:
    owner = OwnerAccount(username="kim", email="kim@tallyho.example", password=PASSWORD)
    refused = FirstKnowledgeBase(name="Help centre", filename="tool.exe", data=b"MZ")
    with pytest.raises(SetupError, match="Unsupported file type"):
        # The form refuses such a file first; a caller that skips it still leaves nothing behind.
        setup_complete(organization_name="Tallyho", owner=owner, knowledge_base=refused, bot_name="Tally")
    assert nothing_created() and not get_user_model().objects.exists()
    assert setup_open()


@pytest.mark.django_db
def test_a_post_without_the_csrf_token_is_refused_and_creates_nothing() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/setup/", owner_fields())
    assert response.status_code == 403
    assert nothing_created()


# Never again ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_setup_the_page_sends_visitors_on_and_a_post_is_refused_creating_nothing(client) -> None:
    assert client.post("/setup/", owner_fields()).status_code == 302
    stranger = Client()
    assert stranger.get("/setup/")["Location"] == "/dashboard/"

    response = stranger.post("/setup/", owner_fields(username="mallory", organization_name="Takeover"))
    assert response.status_code == 409
    assert "This server is already set up" in response.content.decode()
    assert list(Organization.objects.values_list("name", flat=True)) == ["Tallyho"]
    assert not get_user_model().objects.filter(username="mallory").exists()


@pytest.mark.django_db
def test_an_install_with_an_organization_but_no_setup_record_never_opens_setup(client) -> None:
    OrganizationFactory()  # the demo's, or one made in Django admin
    assert not setup_open()
    assert client.get("/setup/").status_code == 302
    assert client.post("/setup/", owner_fields()).status_code == 409
    with pytest.raises(SetupClosed):
        setup_complete(organization_name="Again", owner=UserFactory())
    assert Organization.objects.count() == 1 and not SetupRecord.objects.exists()


@pytest.mark.django_db
def test_deleting_every_organization_does_not_reopen_setup(client) -> None:
    client.post("/setup/", owner_fields())
    membership = Membership.objects.get()
    organization_delete(organization=membership.organization, by=membership)
    assert not Organization.objects.exists()
    assert not setup_open()
    assert Client().get("/dashboard/")["Location"].startswith("/accounts/login/")
    assert client.post("/setup/", owner_fields(username="again")).status_code == 409


def _race(visits: list[tuple[Client, dict[str, str]]], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """POST each visit's fields to /setup/ with its client at the same moment, one thread
    each, with the organization's creation slowed down so both transactions are open at once."""
    create = setup_service.organization_create

    def slow_create(**kwargs: Any) -> Organization:
        time.sleep(0.5)
        return create(**kwargs)

    monkeypatch.setattr(setup_service, "organization_create", slow_create)
    barrier = threading.Barrier(len(visits))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def visit(client: Client, posted: dict[str, str]) -> None:
        try:
            barrier.wait(timeout=10)
            statuses.append(client.post("/setup/", posted).status_code)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=visit, args=pair) for pair in visits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return sorted(statuses)


@pytest.mark.django_db(transaction=True)
def test_two_first_visitors_racing_make_exactly_one_organization_and_one_owner(monkeypatch) -> None:
    kim = owner_fields(username="kim", organization_name="Tallyho")
    lee = owner_fields(username="lee", organization_name="Lee Inc")
    assert _race([(Client(), kim), (Client(), lee)], monkeypatch) == [302, 409]
    organization = Organization.objects.get()
    owner = Membership.objects.get(role=Role.OWNER)
    assert owner.organization == organization
    # The loser's account was never created: only the winner's exists.
    assert list(get_user_model().objects.values_list("username", flat=True)) == [owner.user.username]
    assert (organization.name, owner.user.username) in {("Tallyho", "kim"), ("Lee Inc", "lee")}
    assert SetupRecord.objects.get().organization == organization


@pytest.mark.django_db(transaction=True)
def test_two_signed_in_superusers_racing_make_exactly_one_organization(monkeypatch, django_user_model) -> None:
    visits = []
    for name in ("root", "toor"):
        client = Client()
        client.force_login(django_user_model.objects.create_superuser(name, f"{name}@example.com", PASSWORD))
        visits.append((client, {"organization_name": f"{name}'s company"}))
    assert _race(visits, monkeypatch) == [302, 409]
    assert Organization.objects.count() == 1 and Membership.objects.count() == 1
    assert django_user_model.objects.count() == 2
