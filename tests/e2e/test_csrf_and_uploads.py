"""Issue 9 security suite: CSRF on every form, hostile upload file names, malformed uploads.

CSRF: every dashboard route, the sign-in and sign-out forms and every unsafe REST call made
with a session refuse a POST without the CSRF token and change nothing; with the token they
go through. The routes come from the URL resolver, so a new page is covered without editing
this file, and a `csrf_exempt` anywhere except on a short list of cookie-less endpoints fails.

Uploads: hostile file names through the dashboard, the REST API and inbound email answer a
clean 201/302 or a clear 400, never 500, and nothing is written outside MEDIA_ROOT. Truncated
PDF and DOCX files and zip bombs end as a failed document with a reason; a file over the size
limit is refused; the other documents stay ready.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import docx
import lxml.html
import pytest
from django.apps import apps
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from fpdf import FPDF
from rest_framework.authentication import SessionAuthentication
from rest_framework.test import APIClient
from rest_framework.views import APIView

from bots.models import Attachment, Message
from neo_support import rate_limits
from neo_support.api_auth import ApiKeyAuthentication
from neo_support.models import Invitation, Membership
from neo_support.services import api_key_create
from neo_support.tasking import wait_for_in_process_tasks
from retrieval.models import Document, KnowledgeBase
from tests.factories import BotFactory, KnowledgeBaseFactory, MembershipFactory, UserFactory
from tests.neo_support.test_access_matrix import API, DASHBOARD, tenant

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's

# CSRF ---------------------------------------------------------------------------------------------

# Exempt on purpose, none of them reads a cookie: the inbound-email hook is signed with the
# bot's secret, the widget's HTTP fallback carries the visitor token in a header and checks the
# bot's allowed origins, and the /api/ catch-all answers 404 to everything.
CSRF_EXEMPT = {
    "api/bots/<str:public_key>/inbound-email",
    "chat/<str:public_key>/frames",
    "chat/<str:public_key>/contact",
    "^api/",
}


def url_patterns() -> list[tuple[str, Any]]:
    """(route as the resolver spells it, view) for every URL of the project."""

    def walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
        found = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                found += walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                found.append((prefix + str(pattern.pattern), pattern.callback))
        return found

    return walk(get_resolver().url_patterns)


# Every page a signed-in member can post to: the dashboard (whatever routes it has today),
# the sign-in and sign-out forms, and Django admin's.
SIGN_IN_AND_OUT = {"accounts/login/", "accounts/logout/", "admin/login/", "admin/logout/"}
FORM_ROUTES = sorted(route for route, _ in url_patterns() if route.startswith("dashboard/") or route in SIGN_IN_AND_OUT)
# The dashboard's forms: the access table's writes, and the invitation link's "accept" button.
DASHBOARD_WRITES = {route for route, method, *_ in DASHBOARD if method == "post"} | {
    "dashboard/invitations/<str:token>/"
}
API_WRITES = [(route, method) for route, method, *_ in API if method != "get"]

# What a forged form would send: enough for most forms to do something if it got through.
FORGED = {
    "name": "Forged",
    "email": "forged@example.com",
    "role": "admin",
    "action": "remove",
    "active": "0",
    "url": "https://forged.example.com/hook",
    "events": "ticket.created",
    "text": "Forged text",
    "title": "Forged",
}


@pytest.fixture(autouse=True)
def _no_rate_limits(settings) -> None:
    settings.NEO_RATE_API = "100000/minute"
    rate_limits.rate_reset()


def database_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so a refused request can be shown to have changed nothing."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
    }


def url_for(route: str, ids: dict[str, Any]) -> str:
    """A route's URL with its parameters filled in; a new parameter name fails loudly (add it to `ids`)."""
    if route.startswith("api/^"):  # a DRF router pattern
        path = route.replace("api/^", "/api/").rstrip("$")
        collection = path.split("/")[2]
        pk = {"bots": "bot_id", "knowledge-bases": "knowledge_base_id", "conversations": "conversation_id"}[collection]
        return path.replace("(?P<pk>[^/.]+)", str(ids[pk]))
    return "/" + re.sub(r"<(?:int|str|slug|path):(\w+)>", lambda match: str(ids[match.group(1)]), route)


@pytest.fixture
def owner() -> Membership:
    return MembershipFactory(role="owner")


@pytest.fixture
def ids(owner: Membership) -> dict[str, Any]:
    found: dict[str, Any] = tenant(owner.organization)
    found["token"] = Invitation.objects.get(pk=found["invitation_id"]).token
    return found


def signed_in(user: Any, client_class: type[Client] = Client) -> Client:
    client = client_class(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client: Client) -> str:
    """The token a page of the dashboard hands out (in the cookie and in its forms)."""
    assert client.get("/dashboard/").status_code == 200
    return str(client.cookies["csrftoken"].value)


def test_only_cookie_less_endpoints_are_csrf_exempt() -> None:
    exempt = set()
    for route, view in url_patterns():
        if not getattr(view, "csrf_exempt", False):
            continue
        view_class = getattr(view, "cls", None)
        if view_class is not None and issubclass(view_class, APIView):
            # DRF exempts its views from the middleware and checks CSRF itself, in
            # SessionAuthentication: a view must not swap that for a cookie-based scheme that does not.
            for authentication in view_class.authentication_classes:
                assert authentication is ApiKeyAuthentication or (
                    issubclass(authentication, SessionAuthentication)
                    and authentication.enforce_csrf is SessionAuthentication.enforce_csrf
                ), (route, authentication)
        else:
            exempt.add(route)
    assert exempt == CSRF_EXEMPT


def test_the_route_list_covers_the_whole_dashboard() -> None:
    # A guard against a resolver walk that silently finds nothing.
    assert DASHBOARD_WRITES - set(FORM_ROUTES) == set()
    assert SIGN_IN_AND_OUT - set(FORM_ROUTES) == set()
    assert len(FORM_ROUTES) >= 30


@pytest.mark.django_db
@pytest.mark.parametrize("route", FORM_ROUTES)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(owner, ids, route: str) -> None:
    client = signed_in(owner.user)
    before = database_snapshot()
    response = client.post(url_for(route, ids), FORGED)
    assert response.status_code == 403, (response.status_code, response.content[:300])
    assert b"CSRF verification failed" in response.content
    assert database_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("route", FORM_ROUTES)
def test_a_post_with_a_forged_csrf_token_is_refused(owner, ids, route: str) -> None:
    client = signed_in(owner.user)
    csrf_token(client)  # the victim has a real token; the attacker does not know it
    before = database_snapshot()
    response = client.post(url_for(route, ids), FORGED, headers={"X-CSRFToken": "x" * 64})
    assert response.status_code == 403
    assert database_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("route", sorted(route for route in FORM_ROUTES if route.startswith("dashboard/")))
def test_the_same_post_with_the_token_gets_through(owner, ids, route: str) -> None:
    client = signed_in(owner.user)
    token = csrf_token(client)
    before = database_snapshot()
    response = client.post(url_for(route, ids), FORGED, headers={"X-CSRFToken": token})
    assert response.status_code != 403, response.content[:300]
    assert response.status_code < 500
    if route not in DASHBOARD_WRITES:  # a page the access table calls read-only really is
        assert database_snapshot() == before


@pytest.mark.django_db
def test_every_post_form_on_the_dashboard_carries_the_csrf_token(owner, ids) -> None:
    client = signed_in(owner.user)
    forms = 0
    missing = []
    for route in FORM_ROUTES:
        if not route.startswith("dashboard/") or route.endswith((".json", ".csv")):
            continue
        response = client.get(url_for(route, ids))
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        page = lxml.html.fromstring(response.content)
        for form in page.xpath("//form[translate(@method, 'POST', 'post')='post']"):
            forms += 1
            if not form.xpath(".//input[@type='hidden'][@name='csrfmiddlewaretoken'][@value!='']"):
                missing.append((route, form.get("action")))
    assert missing == []
    assert forms >= 15  # the pages above really hold the forms this test is about


@pytest.mark.django_db
def test_a_handful_of_forms_work_with_the_token_from_the_page(owner, ids) -> None:
    client = signed_in(owner.user)
    token = {"csrfmiddlewaretoken": csrf_token(client)}
    organization = owner.organization

    response = client.post("/dashboard/knowledge-bases/", {"name": "Manuals", **token})
    assert response.status_code == 302
    assert KnowledgeBase.objects.filter(organization=organization, name="Manuals").exists()

    response = client.post("/dashboard/api-keys/", {"name": "CRM sync", "scopes": "knowledge:read", **token})
    assert response.status_code == 200 and organization.api_keys.filter(name="CRM sync").exists()

    response = client.post("/dashboard/team/invite", {"email": "new@example.com", "role": "agent", **token})
    assert response.status_code in (200, 302)
    assert Invitation.objects.filter(organization=organization, email="new@example.com").exists()

    url = url_for("dashboard/knowledge-bases/<int:knowledge_base_id>/documents/<int:document_id>/delete", ids)
    assert client.post(url, token).status_code == 302
    assert not Document.objects.filter(pk=ids["document_id"]).exists()

    bot = organization.bots.get(pk=ids["bot_id"])
    url = url_for("dashboard/bots/<int:bot_id>/delete", ids)
    assert client.post(url, {"confirm_name": bot.name, **token}).status_code == 302
    assert not organization.bots.filter(pk=ids["bot_id"]).exists()

    invited = UserFactory()
    invitation = Invitation.objects.create(organization=organization, email=invited.email, role="agent")
    guest = signed_in(invited)
    guest.get(f"/dashboard/invitations/{invitation.token}/")
    response = guest.post(
        f"/dashboard/invitations/{invitation.token}/", {"csrfmiddlewaretoken": guest.cookies["csrftoken"].value}
    )
    assert response.status_code == 302
    assert Membership.objects.filter(organization=organization, user=invited, role="agent").exists()


def login_token(client: Client) -> str:
    page = lxml.html.fromstring(client.get("/accounts/login/").content)
    return str(page.xpath("//form//input[@name='csrfmiddlewaretoken']/@value")[0])


@pytest.mark.django_db
def test_the_sign_in_form_needs_the_token_and_a_same_origin_post() -> None:
    user = MembershipFactory(role="agent").user
    browser = Client(enforce_csrf_checks=True)
    credentials = {"login": user.username, "password": PASSWORD}

    refused = browser.post("/accounts/login/", credentials)
    assert refused.status_code == 403
    assert "_auth_user_id" not in browser.session

    token = login_token(browser)
    cross_site = browser.post(
        "/accounts/login/", {**credentials, "csrfmiddlewaretoken": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "_auth_user_id" not in browser.session
    user.refresh_from_db()
    assert user.last_login is None

    accepted = browser.post("/accounts/login/", {**credentials, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.pk)


@pytest.mark.django_db
def test_signing_out_needs_a_post_with_the_token(owner) -> None:
    client = signed_in(owner.user)
    assert client.get("/accounts/logout/").status_code == 405  # an <img src> cannot sign anyone out
    assert client.post("/accounts/logout/").status_code == 403
    assert client.get("/dashboard/").status_code == 200  # still signed in

    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf_token(client)})
    assert response.status_code == 302
    assert client.get("/dashboard/")["Location"].startswith("/accounts/login/")


def api_request(client: APIClient, method: str, url: str, data: dict[str, str], **extra: Any) -> Any:
    return getattr(client, method)(url, data, format="json", **extra)


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "method"), API_WRITES)
def test_a_session_authenticated_api_write_needs_the_csrf_token(owner, ids, route: str, method: str) -> None:
    client = signed_in(owner.user, APIClient)
    url = url_for(route, ids)
    before = database_snapshot()
    refused = api_request(client, method, url, {"name": "Forged", "text": "Forged"})
    assert refused.status_code == 403, refused.content[:300]
    assert "CSRF" in refused.json()["error"]["message"]
    assert database_snapshot() == before

    # An empty body: the point is only that the CSRF check lets it through (a real message
    # would wait for the bot's answer).
    allowed = api_request(client, method, url, {}, headers={"X-CSRFToken": csrf_token(client)})
    assert allowed.status_code not in (401, 403), allowed.content[:300]
    assert allowed.status_code < 500


@pytest.mark.django_db
def test_an_api_key_needs_no_csrf_token(owner) -> None:
    _, raw_key = api_key_create(organization=owner.organization, name="server")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    response = client.post("/api/knowledge-bases/", {"name": "From a server"}, format="json")
    assert response.status_code == 201, response.content


# Hostile file names -------------------------------------------------------------------------------

BOUNDARY = "neo-test-boundary-7f3a"
LONG_STEM = "b" * 800

# (id, the Content-Disposition parameter as sent, the name the document keeps or None if no document)
FILE_NAMES = [
    ("dot-dot-slash", b'filename="../../etc/passwd.md"', "passwd.md"),
    ("backslashes", b'filename="..\\..\\evil.txt"', "evil.txt"),
    ("absolute", b'filename="/etc/cron.d/x.txt"', "x.txt"),
    ("windows-path", b'filename="C:\\Windows\\system32\\x.txt"', "x.txt"),
    ("percent-encoded", b'filename="%2e%2e%2fx.md"', "%2e%2e%2fx.md"),
    ("rfc-2231", b"filename*=UTF-8''..%2F..%2Fetc%2Fpasswd.md", "passwd.md"),
    ("html-entities", b'filename="&#46;&#46;&#47;&#46;&#46;&#47;x.md"', "x.md"),
    ("nul-inside", b'filename="a\x00b.md"', "ab.md"),
    ("nul-before-extension", b'filename="x.md\x00.exe"', None),  # refused: it is a .exe
    ("nul-hiding-an-exe", b'filename="evil.exe\x00.md"', "evil.exe.md"),  # stored as <hash>.md, read as Markdown
    ("only-dots", b'filename=".."', None),
    ("extension-only", b'filename=".md"', None),
    ("1000-chars", b'filename="' + b"a" * 1000 + b'.md"', None),  # over the parser's header limit: 400
    ("800-chars", b'filename="' + LONG_STEM.encode() + b'.md"', LONG_STEM[:252] + ".md"),  # UploadedFile keeps 255
    ("long-traversal", b'filename="' + b"../" * 250 + b'x.md"', "x.md"),
    ("fullwidth-solidus", 'filename="..／..／x.md"'.encode(), "..／..／x.md"),
    ("right-to-left-override", 'filename="\u202edm.exe.md"'.encode(), "dm.exe.md"),
    ("zero-width-space", 'filename="x\u200b.md"'.encode(), "x.md"),
    ("html", b'filename="<img src=x onerror=alert(1)>.md"', "<img src=x onerror=alert(1)>.md"),
    ("crlf", b'filename="a\r\n.md"', None),
    ("latin-1-byte", b'filename="caf\xe9.md"', None),
]


def multipart(field: str, disposition: bytes, data: bytes) -> bytes:
    """A multipart body written by hand: Django's test client would strip the path from the name."""
    return b"\r\n".join(
        [
            f"--{BOUNDARY}".encode(),
            f'Content-Disposition: form-data; name="{field}"; '.encode() + disposition,
            b"Content-Type: text/plain",
            b"",
            data,
            f"--{BOUNDARY}--".encode(),
            b"",
        ]
    )


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """MEDIA_ROOT three folders below tmp_path, so a file that escapes it by a few `..` still
    lands where the test can see it."""
    settings.MEDIA_ROOT = tmp_path / "srv" / "neo" / "media"
    return Path(settings.MEDIA_ROOT)


def files_under(folder: Path) -> set[Path]:
    return {path.resolve() for path in folder.rglob("*") if path.is_file()}


def assert_harmless(name: str, *, limit: int) -> None:
    assert "/" not in name and "\\" not in name, name
    assert all(char.isprintable() for char in name), ascii(name)
    assert len(name) <= limit


@pytest.mark.django_db
@pytest.mark.parametrize("via", ["dashboard", "api"])
@pytest.mark.parametrize(("disposition", "kept"), [case[1:] for case in FILE_NAMES], ids=[c[0] for c in FILE_NAMES])
def test_a_hostile_file_name_never_writes_outside_media_root(
    media_root: Path, tmp_path: Path, via: str, disposition: bytes, kept: str | None
) -> None:
    membership = MembershipFactory(role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization)
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    data = b"# Returns\n\nShoes can be returned within 60 days.\n"
    if via == "dashboard":
        client: Client = Client()
        client.force_login(membership.user)
        url = f"/dashboard/knowledge-bases/{knowledge_base.pk}/"
        response = client.post(url, data=multipart("files", disposition, data), content_type=content_type)
        assert response.status_code in (302, 400), response.content[:300]
        page = client.get(url).content.decode()
        assert "<img src=x" not in page
    else:
        _, raw_key = api_key_create(organization=membership.organization, name="uploads")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/"
        response = client.post(url, data=multipart("file", disposition, data), content_type=content_type)
        assert response.status_code in (201, 400), response.content[:300]
        if response.status_code == 400:
            assert response.json()["error"]["message"]

    documents = list(Document.objects.filter(knowledge_base=knowledge_base))
    assert [document.source_filename for document in documents] == ([kept] if kept else [])
    for document in documents:
        folder = (media_root / "documents" / str(knowledge_base.pk)).resolve()
        assert Path(document.file.path).resolve().parent == folder
        assert Path(document.file.name).name == document.checksum[:16] + Path(document.file.name).suffix
        assert_harmless(document.source_filename, limit=255)
        assert_harmless(document.title, limit=500)
    assert files_under(tmp_path) == {Path(document.file.path).resolve() for document in documents}


@pytest.mark.django_db
def test_a_hostile_title_is_escaped_on_the_knowledge_base_page(media_root: Path) -> None:
    membership = MembershipFactory(role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization)
    client = Client()
    client.force_login(membership.user)
    url = f"/dashboard/knowledge-bases/{knowledge_base.pk}/"
    disposition = b'filename="<img src=x onerror=alert(1)>.md"'
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    client.post(url, data=multipart("files", disposition, b"Some text."), content_type=content_type)
    page = client.get(url).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x onerror" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["title", "text", "url"])
def test_a_nul_character_in_a_typed_in_document_is_refused_not_a_500(media_root: Path, field: str) -> None:
    """Regression: PostgreSQL cannot store NUL, and the page passed it straight to the database (500)."""
    membership = MembershipFactory(role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization)
    client = Client()
    client.force_login(membership.user)
    posted = {"title": "Returns", "text": "Shoes can be returned.", field: "Sho\x00es"}
    url = f"/dashboard/knowledge-bases/{knowledge_base.pk}/"
    response = client.post(url, posted, follow=True)
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not Document.objects.exists()


@pytest.mark.django_db
def test_a_nul_character_in_a_knowledge_base_name_is_refused_not_a_500() -> None:
    """Regression: as above, for the form that creates a knowledge base."""
    membership = MembershipFactory(role="admin")
    client = Client()
    client.force_login(membership.user)
    response = client.post("/dashboard/knowledge-bases/", {"name": "Man\x00uals"})
    assert response.status_code == 200
    assert "Null characters are not allowed." in response.content.decode()
    assert not KnowledgeBase.objects.exists()


# (id, the Content-Disposition parameter of the attachment)
ATTACHMENT_NAMES = [
    ("dot-dot-slash", 'filename="../../x.txt"'),
    ("backslashes", 'filename="..\\..\\y.txt"'),
    ("absolute", "filename*=UTF-8''%2Fetc%2Fcron.d%2Fz.txt"),
    ("nul", "filename*=UTF-8''a%00b.txt"),
    ("1000-chars", "filename*=UTF-8''" + "n" * 1000 + ".txt"),
    ("1000-multibyte-chars", "filename*=UTF-8''" + quote("é" * 1000) + ".txt"),
    # Regression: a name with no letter or digit made the storage raise, refusing the whole email.
    ("emoji-only", "filename*=UTF-8''" + quote("\U0001f600")),
    ("stars-only", "filename*=UTF-8''" + quote("★★★")),
    ("right-to-left-override", "filename*=UTF-8''" + quote("\u202etxt.exe")),
    ("only-dots", 'filename=".."'),
    ("html", 'filename="<img src=x onerror=alert(1)>.txt"'),
]


def inbound_email(disposition: str, *, message_id: str) -> bytes:
    return "\r\n".join(
        [
            "From: Jo Customer <jo@customer.example>",
            "To: help@tallyho.example",
            "Subject: A file for you",
            f"Message-ID: <{message_id}@customer.example>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="mail-boundary"',
            "",
            "--mail-boundary",
            "Content-Type: text/plain; charset=utf-8",
            "",
            "Please see the attached file.",
            "--mail-boundary",
            "Content-Type: text/plain",
            f"Content-Disposition: attachment; {disposition}",
            "Content-Transfer-Encoding: base64",
            "",
            base64.b64encode(b"attached text").decode(),
            "--mail-boundary--",
            "",
        ]
    ).encode()


@pytest.mark.django_db
@pytest.mark.parametrize("disposition", [case[1] for case in ATTACHMENT_NAMES], ids=[c[0] for c in ATTACHMENT_NAMES])
def test_an_email_attachment_with_a_hostile_name_lands_inside_media_root(
    media_root: Path, tmp_path: Path, disposition: str
) -> None:
    bot = BotFactory(ticket_mode="off")
    raw = inbound_email(disposition, message_id=hashlib.sha256(disposition.encode()).hexdigest()[:20])
    signature = "sha256=" + hmac.new(bot.inbound_secret.encode(), raw, hashlib.sha256).hexdigest()
    response = Client().post(
        f"/api/bots/{bot.public_key}/inbound-email",
        data=raw,
        content_type="message/rfc822",
        headers={"X-Neo-Signature": signature},
    )
    assert response.status_code == 201, response.content[:300]
    attachment = Attachment.objects.get(message=Message.objects.get(pk=response.json()["message_id"]))
    assert attachment.file.read() == b"attached text"
    stored = Path(attachment.file.path).resolve()
    assert stored.is_relative_to((media_root / "attachments").resolve())
    assert files_under(tmp_path) == {stored}
    assert attachment.filename and attachment.filename != ".."
    assert_harmless(attachment.filename, limit=200)

    member = MembershipFactory(organization=bot.organization, role="admin")
    client = Client()
    client.force_login(member.user)
    page = client.get(f"/dashboard/inbox/{attachment.message.conversation.ticket.pk}/").content.decode()
    links = lxml.html.fromstring(page).xpath("//p[@class='attachment']/a/@href")
    assert links == [attachment.file.url]
    assert links[0].startswith("/media/attachments/") and ".." not in links[0]
    assert "<img src=x" not in page


# Malformed files ----------------------------------------------------------------------------------


def pdf_bytes() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in ("Returns are accepted within 45 days.", "Gift cards never expire."):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def docx_bytes(text: str = "Parcels to Canada arrive within nine business days.") -> bytes:
    document = docx.Document()
    document.add_heading("Shipping", level=1)
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def docx_bomb() -> bytes:
    """A real Word file plus one part of 300 MB of zeros: about 340 kB on the wire."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes())) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for member in source.infolist():
            target.writestr(member.filename, source.read(member))
        with target.open("word/padding.bin", "w", force_zip64=True) as padding:
            zeros = bytes(1024 * 1024)
            for _ in range(300):
                padding.write(zeros)
    return buffer.getvalue()


def docx_bomb_with_lying_sizes() -> bytes:
    """A Word file whose main part inflates to 20 MB while its headers claim the original size,
    so a check of the declared sizes alone would let it through."""
    with zipfile.ZipFile(io.BytesIO(docx_bytes())) as source:
        members = [(member, source.read(member)) for member in source.infolist()]
    buffer = io.BytesIO()
    declared = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for member, content in members:
            if member.filename == "word/document.xml":
                declared = len(content)
                content = content.replace(b"</w:body>", b" " * (20 * 1024 * 1024) + b"</w:body>")
            target.writestr(member.filename, content)
    data = bytearray(buffer.getvalue())
    name = b"word/document.xml"
    local = data.find(b"PK\x03\x04")
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.find(b"PK\x03\x04", local + 4)
    data[local + 22 : local + 26] = declared.to_bytes(4, "little")  # uncompressed size, local header
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")  # uncompressed size, central directory
    return bytes(data)


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


MALFORMED = [
    ("truncated.pdf", lambda: half(pdf_bytes()), "PDF could not be read"),
    ("truncated.docx", lambda: half(docx_bytes()), "DOCX file could not be read"),
    ("bomb.docx", docx_bomb, "DOCX file unpacks to more than"),
    # zipfile stops inflating at the declared size and the CRC then fails: refused as damaged.
    ("lying-bomb.docx", docx_bomb_with_lying_sizes, "DOCX file could not be read"),
]


@pytest.fixture
def api_and_knowledge_base() -> tuple[APIClient, KnowledgeBase]:
    knowledge_base = KnowledgeBaseFactory(name="Help centre")
    _, raw_key = api_key_create(organization=knowledge_base.organization, name="uploads")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client, knowledge_base


def upload(client: APIClient, knowledge_base: KnowledgeBase, filename: str, data: bytes) -> Any:
    file = io.BytesIO(data)
    file.name = filename
    return client.post(f"/api/knowledge-bases/{knowledge_base.pk}/documents/", {"file": file}, format="multipart")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
@pytest.mark.parametrize(("filename", "make", "reason"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_a_malformed_file_fails_with_a_reason_and_the_others_stay_ready(
    api_and_knowledge_base, filename: str, make, reason: str
) -> None:
    client, knowledge_base = api_and_knowledge_base
    good = upload(client, knowledge_base, "shipping.docx", docx_bytes())
    assert good.status_code == 201, good.content
    wait_for_in_process_tasks(timeout=120)
    before = Document.objects.get(pk=good.json()["id"])
    assert before.status == "ready", before.error

    bad = upload(client, knowledge_base, filename, make())
    assert bad.status_code == 201, bad.content  # accepted; reading it is the worker's job
    wait_for_in_process_tasks(timeout=120)

    failed = Document.objects.get(pk=bad.json()["id"])
    assert failed.status == "failed"
    assert reason in failed.error and "Traceback" not in failed.error and len(failed.error) < 300
    assert failed.chunk_count == 0 and not failed.chunks.exists()
    after = Document.objects.get(pk=before.pk)
    assert (after.status, after.chunk_count) == ("ready", before.chunk_count)
    results = client.get(f"/api/knowledge-bases/{knowledge_base.pk}/search/", {"q": "parcels to Canada"})
    assert results.json()["results"][0]["document_id"] == before.pk


@pytest.mark.django_db
@pytest.mark.parametrize("via", ["dashboard", "api"])
def test_a_50_mb_single_line_text_file_is_refused_with_the_size_limit(
    settings, media_root: Path, tmp_path: Path, via: str
) -> None:
    settings.NEO_UPLOAD_MAX_BYTES = 25 * 1024 * 1024  # the default
    membership = MembershipFactory(role="admin")
    knowledge_base = KnowledgeBaseFactory(organization=membership.organization)
    huge = io.BytesIO(b"word " * (10 * 1024 * 1024))  # 50 MB, no line break
    huge.name = "huge.txt"
    if via == "dashboard":
        client = Client()
        client.force_login(membership.user)
        response = client.post(f"/dashboard/knowledge-bases/{knowledge_base.pk}/", {"files": [huge]}, follow=True)
        assert response.status_code == 200
        message = response.content.decode()
    else:
        _, raw_key = api_key_create(organization=membership.organization, name="uploads")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        url = f"/api/knowledge-bases/{knowledge_base.pk}/documents/"
        response = client.post(url, {"file": huge}, format="multipart")
        assert response.status_code == 400
        message = response.json()["error"]["message"]
    assert "The file is 50.0 MB; the limit is 25 MB." in message
    assert not Document.objects.exists()
    assert files_under(tmp_path) == set()
