"""A user's organizations: the current one in the session and the header's switcher, a new
one (NEO_ALLOW_NEW_ORGANIZATIONS), renaming, leaving (never the last owner) and deleting
(owners, after typing the name, with what goes said first)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import lxml.html
import pytest
from django.test import Client
from rest_framework.test import APIClient

from bots.models import Bot, Conversation, Ticket
from neo_support.management.commands.runstack import Command
from neo_support.models import ApiKey, Membership, Organization, Role, SetupRecord
from neo_support.selectors import CURRENT_ORGANIZATION_KEY
from neo_support.services import api_key_create
from retrieval.models import Document, KnowledgeBase
from retrieval.services.documents import document_create_from_file
from tests.conftest import clean_env, run_manage, run_python
from tests.factories import (
    BotFactory,
    DocumentFactory,
    InvitationFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    OrganizationFactory,
    TicketFactory,
    UserFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def switcher(client: Client) -> lxml.html.HtmlElement | None:
    found = lxml.html.fromstring(client.get("/dashboard/").content).xpath("//header//*[@id='org-switcher']")
    return found[0] if found else None


@pytest.fixture
def two() -> tuple[Membership, Membership]:
    """A user who owns Alpha (joined first) and is an agent in Beta."""
    alpha = MembershipFactory(organization__name="Alpha Ltd", role="owner")
    beta = MembershipFactory(organization__name="Beta Ltd", user=alpha.user, role="agent")
    BotFactory(organization=alpha.organization, name="Alpha bot")
    BotFactory(organization=beta.organization, name="Beta bot")
    return alpha, beta


# The current organization and the switcher -------------------------------------------------


def test_the_header_names_the_current_organization_and_offers_the_others(two) -> None:
    alpha, beta = two
    client = signed_in(alpha.user)
    menu = switcher(client)
    assert menu is not None
    assert menu.xpath("string(.//summary)").strip().endswith("Alpha Ltd")  # the oldest membership, by default
    options = [button.text_content().split("·")[0].strip() for button in menu.xpath(".//button[@name='organization']")]
    assert options == ["Beta Ltd"]
    assert menu.xpath(".//form//input[@name='csrfmiddlewaretoken']")
    assert "New organization" in menu.text_content()  # an owner, on an install that allows it


def test_switching_shows_the_other_organization_with_the_role_held_there(two) -> None:
    alpha, beta = two
    client = signed_in(alpha.user)
    response = client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.session[CURRENT_ORGANIZATION_KEY] == beta.organization_id
    page = client.get("/dashboard/").content.decode()
    assert "Beta bot" in page and "Alpha bot" not in page
    assert "You are agent here" in page
    assert client.get("/dashboard/bots/new").status_code == 403  # an agent in Beta
    assert switcher(client).xpath("string(.//summary)").strip().endswith("Beta Ltd")  # type: ignore[union-attr]

    client.post("/dashboard/organizations/switch", {"organization": alpha.organization_id})
    page = client.get("/dashboard/").content.decode()
    assert "Alpha bot" in page and "Beta bot" not in page
    assert client.get("/dashboard/bots/new").status_code == 200


def test_the_session_api_follows_the_switch(two) -> None:
    alpha, beta = two
    client = APIClient()
    client.force_login(alpha.user)
    assert [bot["name"] for bot in client.get("/api/bots/").json()["results"]] == ["Alpha bot"]
    client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    assert client.get("/api/bots/").status_code == 403  # the role that counts is Beta's: agent
    beta.role = Role.VIEWER
    beta.save()
    assert [bot["name"] for bot in client.get("/api/bots/").json()["results"]] == ["Beta bot"]
    assert client.post("/api/bots/", {"name": "Viewer's bot"}, format="json").status_code == 403


def test_accepting_an_invitation_switches_to_the_organization_joined() -> None:
    alpha = MembershipFactory(organization__name="Alpha Ltd", role="owner", user__email="ann@example.com")
    invitation = InvitationFactory(organization__name="Gamma Ltd", email="ann@example.com")
    client = signed_in(alpha.user)
    response = client.post(f"/dashboard/invitations/{invitation.token}/")
    assert response.status_code == 302
    assert client.session[CURRENT_ORGANIZATION_KEY] == invitation.organization_id
    assert "Gamma Ltd" in client.get("/dashboard/").content.decode()


def test_one_cannot_switch_to_an_organization_one_is_not_in(two) -> None:
    alpha, _ = two
    client = signed_in(alpha.user)
    stranger = OrganizationFactory()
    assert client.post("/dashboard/organizations/switch", {"organization": stranger.pk}).status_code == 404
    assert client.post("/dashboard/organizations/switch", {"organization": "beta"}).status_code == 400
    assert client.get("/dashboard/organizations/switch").status_code == 405
    assert CURRENT_ORGANIZATION_KEY not in client.session


def test_a_user_of_one_organization_has_no_switch_form() -> None:
    membership = MembershipFactory(organization__name="Solo Ltd", role="agent")
    menu = switcher(signed_in(membership.user))
    assert menu is not None and "Solo Ltd" in menu.text_content()
    assert menu.xpath(".//button[@name='organization']") == []
    assert "New organization" not in menu.text_content()  # not an owner anywhere


def test_the_organizations_page_lists_them_with_their_roles(two) -> None:
    alpha, beta = two
    page = lxml.html.fromstring(signed_in(alpha.user).get("/dashboard/organizations/").content)
    rows = [" ".join(row.text_content().split()) for row in page.xpath("//table[@class='organizations']/tbody/tr")]
    assert rows[0].startswith("Alpha Ltd (current) Owner") and "Delete" in rows[0]
    assert rows[1].startswith("Beta Ltd Agent Switch to") and "Delete" not in rows[1]


def test_renaming_in_settings_renames_the_current_organization(two) -> None:
    alpha, beta = two
    beta.role = Role.ADMIN
    beta.save()
    client = signed_in(alpha.user)
    client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    assert client.post("/dashboard/settings/", {"name": "Beta Group"}).status_code == 302
    assert Organization.objects.get(pk=beta.organization_id).name == "Beta Group"
    assert Organization.objects.get(pk=alpha.organization_id).name == "Alpha Ltd"


# New organizations --------------------------------------------------------------------------


def test_an_owner_creates_another_organization_owns_it_and_acts_in_it(two) -> None:
    alpha, _ = two
    client = signed_in(alpha.user)
    assert client.get("/dashboard/organizations/new").status_code == 200
    response = client.post("/dashboard/organizations/new", {"name": "Gamma Ltd"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    gamma = Organization.objects.get(name="Gamma Ltd")
    assert Membership.objects.get(organization=gamma).user == alpha.user
    assert Membership.objects.get(organization=gamma).role == Role.OWNER
    assert client.session[CURRENT_ORGANIZATION_KEY] == gamma.pk
    page = client.get("/dashboard/").content.decode()
    assert "Gamma Ltd is ready, and you are its owner." in page and "Alpha bot" not in page


def test_an_empty_name_is_refused() -> None:
    owner = MembershipFactory(role="owner")
    response = signed_in(owner.user).post("/dashboard/organizations/new", {"name": "  "})
    assert response.status_code == 400
    assert Organization.objects.count() == 1


def test_someone_who_owns_no_organization_cannot_create_one() -> None:
    agent = MembershipFactory(role="agent")
    client = signed_in(agent.user)
    for response in (
        client.get("/dashboard/organizations/new"),
        client.post("/dashboard/organizations/new", {"name": "Mine"}),
    ):
        assert response.status_code == 403
        assert "Only owners of an organization can create another one." in response.content.decode()
    assert Organization.objects.count() == 1


def test_an_install_can_forbid_new_organizations(settings) -> None:
    settings.NEO_ALLOW_NEW_ORGANIZATIONS = False
    owner = MembershipFactory(role="owner")
    client = signed_in(owner.user)
    response = client.post("/dashboard/organizations/new", {"name": "Second"})
    assert response.status_code == 403
    assert "NEO_ALLOW_NEW_ORGANIZATIONS is off" in response.content.decode()
    assert Organization.objects.count() == 1
    assert "New organization" not in switcher(client).text_content()  # type: ignore[union-attr]


def test_a_superuser_of_no_organization_is_offered_a_new_one(django_user_model) -> None:
    OrganizationFactory()  # setup is over: someone else's organization exists
    root = django_user_model.objects.create_superuser("root", "root@example.com", "x")
    client = signed_in(root)
    response = client.get("/dashboard/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "not a member of any organization" in page and "/dashboard/organizations/new" in page
    assert client.post("/dashboard/organizations/new", {"name": "Root Co"}).status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_the_setting_is_read_from_the_environment(var_dir: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.NEO_ALLOW_NEW_ORGANIZATIONS)"
    )
    env = clean_env(DJANGO_SETTINGS_MODULE="neo_support.settings", NEO_VAR_DIR=str(var_dir))
    assert run_python(code, env).stdout.strip() == "True"
    assert run_python(code, {**env, "NEO_ALLOW_NEW_ORGANIZATIONS": "off"}).stdout.strip() == "False"
    result = run_manage("check", env={**env, "NEO_ALLOW_NEW_ORGANIZATIONS": "maybe"})
    assert result.returncode == 2
    assert "Configuration error: NEO_ALLOW_NEW_ORGANIZATIONS: expected one of" in result.stderr


def test_the_runstack_banner_says_how_to_make_your_own_organization_beside_the_demo(settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()
    Command(stdout=out)._print_banner("http://127.0.0.1:8000", with_workers=False)
    assert "Your own:   beside the demo, sign in and choose New organization" in out.getvalue()


# Leaving ------------------------------------------------------------------------------------


def test_a_member_leaves_after_confirming_and_acts_in_another_organization(two) -> None:
    alpha, beta = two
    client = signed_in(alpha.user)
    client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    url = f"/dashboard/organizations/{beta.organization_id}/leave"
    assert "Leave Beta Ltd?" in client.get(url).content.decode()
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert not Membership.objects.filter(pk=beta.pk).exists()
    assert CURRENT_ORGANIZATION_KEY not in client.session
    page = client.get("/dashboard/").content.decode()
    assert "You left Beta Ltd." in page and "Alpha bot" in page
    assert Organization.objects.filter(pk=beta.organization_id).exists()  # the organization stays


def test_the_last_owner_cannot_leave(two) -> None:
    alpha, _ = two
    client = signed_in(alpha.user)
    response = client.post(f"/dashboard/organizations/{alpha.organization_id}/leave")
    assert response.status_code == 400
    assert "You are the last owner of Alpha Ltd: make someone else an owner first" in response.content.decode()
    assert Membership.objects.filter(pk=alpha.pk).exists()


def test_an_owner_leaves_when_another_owner_stays(two) -> None:
    alpha, _ = two
    MembershipFactory(organization=alpha.organization, role="owner")
    assert signed_in(alpha.user).post(f"/dashboard/organizations/{alpha.organization_id}/leave").status_code == 302
    assert not Membership.objects.filter(pk=alpha.pk).exists()


def test_leaving_an_organization_one_is_not_in_is_404(two) -> None:
    alpha, _ = two
    stranger = OrganizationFactory()
    assert signed_in(alpha.user).post(f"/dashboard/organizations/{stranger.pk}/leave").status_code == 404


# Deleting -----------------------------------------------------------------------------------


@pytest.fixture
def filled(settings, tmp_path) -> Membership:  # type: ignore[no-untyped-def]
    """An owner's organization with something of everything, a stored file among them."""
    settings.MEDIA_ROOT = tmp_path / "media"
    owner = MembershipFactory(organization__name="Doomed Ltd", role="owner")
    organization = owner.organization
    knowledge_base = KnowledgeBaseFactory(organization=organization)
    DocumentFactory(knowledge_base=knowledge_base)
    document_create_from_file(knowledge_base=knowledge_base, filename="faq.md", data=b"# FAQ\n\nYes.", queue=False)
    bot = BotFactory(organization=organization)
    TicketFactory(conversation__bot=bot)
    api_key_create(organization=organization, name="CRM")
    WebhookEndpointFactory(organization=organization)
    MembershipFactory(organization=organization, role="viewer")
    return owner


def test_the_delete_page_says_what_goes_with_counts(filled) -> None:
    response = signed_in(filled.user).get(f"/dashboard/organizations/{filled.organization_id}/delete")
    assert response.status_code == 200
    items = [
        " ".join(item.text_content().split())
        for item in lxml.html.fromstring(response.content).xpath("//ul[@class='deletes']/li")
    ]
    assert items == [
        "Bots: 1",
        "Conversations: 1",
        "Tickets: 1",
        "Knowledge bases: 1",
        "Documents: 2",
        "API keys: 1",
        "Webhooks: 1",
        "Members: 2",
    ]


def test_a_wrong_name_deletes_nothing(filled) -> None:
    response = signed_in(filled.user).post(
        f"/dashboard/organizations/{filled.organization_id}/delete", {"confirm_name": "Doomed"}
    )
    assert response.status_code == 400
    assert "That is not this organization&#x27;s name." in response.content.decode()
    assert Organization.objects.filter(pk=filled.organization_id).exists() and Bot.objects.exists()


def test_typing_the_name_deletes_everything_in_it_and_nothing_else(filled, django_capture_on_commit_callbacks) -> None:
    other = BotFactory(name="Survivor")
    _, raw_key = api_key_create(organization=filled.organization, name="Live key")
    stored = Path(Document.objects.exclude(file="").get().file.path)
    assert stored.exists()
    theirs = {
        model: list(model.objects.for_organization(filled.organization).values_list("pk", flat=True))
        for model in (Bot, Conversation, Ticket, KnowledgeBase, Document, ApiKey, Membership)
    }
    assert all(theirs.values())
    client = signed_in(filled.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/dashboard/organizations/{filled.organization_id}/delete", {"confirm_name": "Doomed Ltd"}
        )
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert not Organization.objects.filter(pk=filled.organization_id).exists()
    for model, ids in theirs.items():
        assert not model.objects.filter(pk__in=ids).exists(), model.__name__
    assert list(Bot.objects.all()) == [other]  # another organization's bot stays
    assert not stored.exists()  # the uploaded file went with its document
    assert filled.user.__class__.objects.filter(pk=filled.user.pk).exists()  # the account stays

    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert keyed.get("/api/bots/").status_code == 401
    # The owner now has no organization; setup stays closed.
    assert SetupRecord.objects.exists()
    assert client.get("/dashboard/").status_code == 403


def test_only_an_owner_may_delete(filled) -> None:
    admin = MembershipFactory(organization=filled.organization, role="admin")
    client = signed_in(admin.user)
    url = f"/dashboard/organizations/{filled.organization_id}/delete"
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirm_name": "Doomed Ltd"}).status_code == 403
    assert Organization.objects.filter(pk=filled.organization_id).exists()


def test_deleting_the_current_organization_moves_the_session_to_another(two) -> None:
    alpha, beta = two
    beta.role = Role.OWNER
    beta.save()
    client = signed_in(alpha.user)
    client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    client.post(f"/dashboard/organizations/{beta.organization_id}/delete", {"confirm_name": "Beta Ltd"})
    assert CURRENT_ORGANIZATION_KEY not in client.session
    page = client.get("/dashboard/").content.decode()
    assert "Beta Ltd and everything in it were deleted." in page and "Alpha bot" in page


def test_the_session_of_another_member_falls_back_when_its_organization_is_deleted(two) -> None:
    alpha, beta = two
    client = signed_in(alpha.user)
    client.post("/dashboard/organizations/switch", {"organization": beta.organization_id})
    Organization.objects.filter(pk=beta.organization_id).delete()  # by its owner, elsewhere
    assert json.dumps(client.session[CURRENT_ORGANIZATION_KEY]) == str(beta.organization_id)
    assert "Alpha bot" in client.get("/dashboard/").content.decode()


def test_no_user_is_left_without_an_account_page(two) -> None:
    # A user who left their only organization gets the usual page, not an error.
    _, beta = two
    user = UserFactory()
    membership = MembershipFactory(user=user, organization=beta.organization, role="viewer")
    client = signed_in(user)
    client.post(f"/dashboard/organizations/{membership.organization_id}/leave")
    response = client.get("/dashboard/")
    assert response.status_code == 403 and "not a member of any organization" in response.content.decode()
