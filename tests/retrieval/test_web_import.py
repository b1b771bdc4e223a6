"""Web import (retrieval/loaders/web.py) against local HTTP servers only.

Each test starts a ThreadingHTTPServer on 127.0.0.1. Loopback is a private address, so tests that fetch
from it pass allow_private=True; the SSRF tests check that without it nothing is ever connected to.
A guard fixture fails any test that tries to open a connection to a non-loopback address.
"""

from __future__ import annotations

import datetime
import functools
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF

from retrieval.loaders import LoadedDocument, LoaderError, PageError, crawl_site, fetch_url, safe_http


@dataclass
class Response:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    send_length: bool = True


class LocalSite:
    """A tiny web site on 127.0.0.1: `routes` maps a request path (with query) to its Response."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.routes: dict[str, Response] = {}
        self.requests: list[str] = []
        self.host_headers: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def page(self, path: str, html: str, **options: Any) -> None:
        self.routes[path] = Response(body=html.encode(), **options)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = Response(status=status, headers={"Location": location})


def _handler_for(site: LocalSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            site.requests.append(self.path)
            site.host_headers.append(self.headers.get("Host", ""))
            response = site.routes.get(self.path, Response(body=b"<p>Not found</p>", status=404))
            time.sleep(response.delay)
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                if response.send_length:
                    self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (timeouts, oversize bodies): that is the point of those tests

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler


@contextmanager
def serving(tls: ssl.SSLContext | None = None) -> Iterator[LocalSite]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    local_site = LocalSite(server)
    server.RequestHandlerClass = _handler_for(local_site)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield local_site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with serving() as local_site:
        yield local_site


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Fail loudly if anything in these tests dials out beyond loopback; record every connection made."""
    connections: list[tuple[str, int]] = []
    original = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to connect to {address}")
        connections.append(address)
        return original(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return connections


def loaded(results: list[LoadedDocument | LoaderError]) -> list[LoadedDocument]:
    return [result for result in results if isinstance(result, LoadedDocument)]


def crawl(url: str, **options: Any) -> list[LoadedDocument | LoaderError]:
    return list(crawl_site(url, allow_private=True, **options))


# ---------------------------------------------------------------------------------------------------------------
# fetch_url


def test_fetch_url_loads_an_html_page_with_its_url_and_anchors(site: LocalSite) -> None:
    site.page("/help", "<title>Help | Acme</title><h1>Help</h1><h2 id='login'>Login</h2><p>Use your email.</p>")
    document = fetch_url(site.url("/help"), allow_private=True)
    assert document.title == "Help"
    assert document.source_url == site.url("/help")
    assert document.blocks[0].text == "Use your email."
    assert document.blocks[0].location == "#login"


def test_a_fetched_page_loses_control_characters_and_a_wrong_charset(site: LocalSite) -> None:
    # Regression (issue 23): fetched HTML skipped the control-character pass uploads get, and a
    # server's charset the bytes do not fit was trusted.
    site.page("/faq", "<title>FAQ\x07</title><h2>Ship\x1bping</h2><p>退款将在五个\x08工作日内退回。</p>",
              content_type="text/html; charset=gb2312")  # fmt: skip
    document = fetch_url(site.url("/faq"), allow_private=True)
    assert (document.title, document.blocks[0].heading_path) == ("FAQ", ("Shipping",))
    assert document.blocks[0].text == "退款将在五个工作日内退回。"


def test_fetch_url_sends_our_user_agent(site: LocalSite) -> None:
    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            received.append(self.headers.get("User-Agent", ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    site.server.RequestHandlerClass = Recorder
    fetch_url(site.url("/"), allow_private=True, user_agent="TestBot/2.0")
    assert received == ["TestBot/2.0"]


def test_fetch_url_follows_a_redirect_within_the_site(site: LocalSite) -> None:
    site.redirect("/old", "/new")
    site.page("/new", "<p>Moved here.</p>")
    document = fetch_url(site.url("/old"), allow_private=True)
    assert document.source_url == site.url("/new")
    assert document.text == "Moved here."


def test_a_redirect_off_site_is_refused_without_contacting_the_other_site(
    site: LocalSite, loopback_only: list[tuple[str, int]]
) -> None:
    site.redirect("/away", "http://localhost:9/elsewhere")
    with pytest.raises(LoaderError, match="redirects off-site to http://localhost:9/elsewhere"):
        fetch_url(site.url("/away"), allow_private=True)
    assert all(port == site.port for _, port in loopback_only)


def test_a_www_prefix_counts_as_the_same_site() -> None:
    assert safe_http.site_of("https://www.Example.com/a") == safe_http.site_of("https://example.com/b")
    assert safe_http.site_of("https://docs.example.com/") != safe_http.site_of("https://example.com/")


def test_too_many_redirects_are_refused(site: LocalSite) -> None:
    for hop in range(7):
        site.redirect(f"/hop{hop}", f"/hop{hop + 1}")
    with pytest.raises(LoaderError, match="more than 5 times"):
        fetch_url(site.url("/hop0"), allow_private=True)


def test_a_404_is_reported_with_its_status_code(site: LocalSite) -> None:
    with pytest.raises(LoaderError, match="returned HTTP 404"):
        fetch_url(site.url("/missing"), allow_private=True)


def test_a_server_error_is_reported_with_its_status_code(site: LocalSite) -> None:
    site.page("/broken", "oops", status=503)
    with pytest.raises(LoaderError, match="returned HTTP 503"):
        fetch_url(site.url("/broken"), allow_private=True)


def test_a_slow_page_times_out(site: LocalSite) -> None:
    site.page("/slow", "<p>Too late.</p>", delay=2.0)
    started = time.perf_counter()
    with pytest.raises(LoaderError, match=r"timed out after 0\.5 s"):
        fetch_url(site.url("/slow"), allow_private=True, timeout=0.5)
    assert time.perf_counter() - started < 1.5


def test_an_oversize_response_is_refused_from_its_content_length(site: LocalSite) -> None:
    site.page("/big", "<p>" + "x" * 5000 + "</p>")
    with pytest.raises(LoaderError, match="larger than the"):
        fetch_url(site.url("/big"), allow_private=True, max_bytes=1000)


def test_an_oversize_response_without_a_length_is_refused_while_streaming(site: LocalSite) -> None:
    site.page("/big", "<p>" + "x" * 50_000 + "</p>", send_length=False)
    with pytest.raises(LoaderError, match="larger than the"):
        fetch_url(site.url("/big"), allow_private=True, max_bytes=1000)


def test_plain_text_and_markdown_responses_use_their_loaders(site: LocalSite) -> None:
    site.page("/notes.txt", "First.\n\nSecond.", content_type="text/plain; charset=utf-8")
    site.page("/guide", "# Guide\n\n## Setup\n\nRun it.", content_type="text/markdown")
    site.page("/README.md", "# Readme\n\nServed as text.", content_type="text/plain")
    notes = fetch_url(site.url("/notes.txt"), allow_private=True)
    assert [block.text for block in notes.blocks] == ["First.", "Second."]
    assert notes.source_url == site.url("/notes.txt")
    guide = fetch_url(site.url("/guide"), allow_private=True)
    assert guide.title == "Guide"
    assert guide.blocks[0].heading_path == ("Setup",)
    assert fetch_url(site.url("/README.md"), allow_private=True).title == "Readme"


def test_a_latin1_text_response_is_decoded_with_its_declared_charset(site: LocalSite) -> None:
    site.routes["/menu"] = Response(body="Crème brûlée".encode("latin-1"), content_type="text/plain; charset=latin-1")
    assert fetch_url(site.url("/menu"), allow_private=True).text == "Crème brûlée"


def test_a_pdf_response_uses_the_pdf_loader(site: LocalSite) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Warranty terms.")
    site.routes["/terms.pdf"] = Response(body=bytes(pdf.output()), content_type="application/pdf")
    document = fetch_url(site.url("/terms.pdf"), allow_private=True)
    assert document.title == "terms"
    assert document.blocks[0].location == "page 1"
    assert document.source_url == site.url("/terms.pdf")


def test_an_unsupported_content_type_is_refused(site: LocalSite) -> None:
    site.routes["/logo"] = Response(body=b"\x89PNG....", content_type="image/png")
    with pytest.raises(LoaderError, match="is image/png, which cannot be imported"):
        fetch_url(site.url("/logo"), allow_private=True)


# ---------------------------------------------------------------------------------------------------------------
# SSRF safety


@pytest.fixture
def no_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a request was sent")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://192.168.1.1/",
        "http://224.0.0.1/",
    ],
)
def test_private_addresses_are_refused_before_any_connection(url: str, no_requests: None) -> None:
    with pytest.raises(LoaderError, match="points at a private/internal address"):
        fetch_url(url)
    with pytest.raises(LoaderError, match="points at a private/internal address"):
        crawl_site(url)


def test_a_host_name_is_refused_when_any_of_its_addresses_is_private(
    monkeypatch: pytest.MonkeyPatch, no_requests: None
) -> None:
    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        addresses = ["93.184.216.34", "10.1.2.3"] if host == "intranet.example" else [host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(LoaderError, match=r"private/internal address \(10\.1\.2\.3\)"):
        fetch_url("https://intranet.example/wiki")


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer lookups of the names in `answers` in turn (the last answer repeats); other hosts resolve to themselves."""
    lookups: list[str] = []

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[Any, ...]]:
        lookups.append(host)
        queue = answers.get(host)
        address = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


def test_every_redirect_hop_is_checked_before_it_is_followed(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch, loopback_only: list[tuple[str, int]]
) -> None:
    # The site's name first resolves to "public" 127.0.0.1 (this test's server), then to 10.0.0.1: the
    # redirect must be stopped by the second check, not followed to the internal address.
    monkeypatch.setattr(safe_http, "is_public_address", lambda address: address == "127.0.0.1")
    fake_dns(monkeypatch, {"help.neo.test": ["127.0.0.1", "10.0.0.1"]})
    site.redirect("/go", "/metadata")
    with pytest.raises(LoaderError, match=r"private/internal address \(10\.0\.0\.1\)"):
        fetch_url(f"http://help.neo.test:{site.port}/go")
    assert loopback_only == [("127.0.0.1", site.port)]
    assert site.requests == ["/go"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file.txt", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("http://admin:hunter2@example.com/", "user name or password"),
        ("http:///no-host", "not a valid web address|has no host"),
    ],
)
def test_other_schemes_and_urls_with_credentials_are_refused(url: str, message: str, no_requests: None) -> None:
    with pytest.raises(LoaderError, match=message) as error:
        fetch_url(url)
    assert "hunter2" not in str(error.value)


def test_the_request_goes_to_the_address_that_was_checked(
    site: LocalSite, monkeypatch: pytest.MonkeyPatch, loopback_only: list[tuple[str, int]]
) -> None:
    # A second DNS lookup could answer differently (DNS rebinding); only the first, checked answer is used.
    lookups = fake_dns(monkeypatch, {"help.neo.test": ["127.0.0.1", "10.9.9.9"]})
    site.page("/", "<p>Hello from help.neo.test</p>")
    document = fetch_url(f"http://help.neo.test:{site.port}/", allow_private=True)
    assert document.text == "Hello from help.neo.test"
    assert lookups.count("help.neo.test") == 1
    assert site.host_headers == [f"help.neo.test:{site.port}"]
    assert loopback_only == [("127.0.0.1", site.port)]


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` that is its own authority, and its key, as PEM files."""
    pytest.importorskip("cryptography")  # installed with the web stack (daphne, Twisted), not pinned by us
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "certificate.pem", directory / "key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_file, key_file


@pytest.mark.parametrize(("certificate_host", "accepted"), [("help.neo.test", True), ("other.test", False)])
def test_https_is_verified_against_the_host_name_while_connecting_to_the_checked_address(
    certificate_host: str, accepted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate_file, key_file = self_signed_certificate(tmp_path, certificate_host)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(certificate_file, key_file)
    # Trust only this certificate, so verification is real and nothing depends on the system's CA store.
    monkeypatch.setattr(
        httpx, "Client", functools.partial(httpx.Client, verify=ssl.create_default_context(cafile=certificate_file))
    )
    fake_dns(monkeypatch, {"help.neo.test": ["127.0.0.1"]})
    with serving(tls=server_tls) as tls_site:
        tls_site.page("/", "<p>Served over TLS.</p>")
        url = f"https://help.neo.test:{tls_site.port}/"
        if accepted:
            assert fetch_url(url, allow_private=True).text == "Served over TLS."
        else:
            with pytest.raises(LoaderError, match="certificate|hostname"):
                fetch_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("240.0.0.1", False),
        ("not an address", False),
    ],
)
def test_only_global_addresses_count_as_public(address: str, public: bool) -> None:
    assert safe_http.is_public_address(address) is public


# ---------------------------------------------------------------------------------------------------------------
# crawl_site


def link_page(title: str, *links: str) -> str:
    anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
    return f"<title>{title}</title><nav>{anchors}</nav><p>{title} content.</p>"


def test_crawl_follows_same_site_links_breadth_first_and_skips_files(site: LocalSite) -> None:
    site.page("/", link_page("Home", "/a", "/b#section", "/b", "/logo.png", "/files/x.zip", "mailto:x@example.com"))
    site.page("/a", link_page("A", "/c", "http://localhost:9/offsite", "/"))
    site.page("/b", link_page("B", "/a?tab=1"))
    site.page("/c", link_page("C"))
    site.page("/a?tab=1", link_page("A tab"))
    results = crawl(site.url("/"))
    assert [document.title for document in loaded(results)] == ["Home", "A", "B", "C", "A tab"]
    assert all(not path.endswith((".png", ".zip")) for path in site.requests)
    assert site.requests.count("/b") == 1


def test_crawl_stops_at_max_pages(site: LocalSite) -> None:
    site.page("/", link_page("Home", *(f"/p{number}" for number in range(10))))
    for number in range(10):
        site.page(f"/p{number}", link_page(f"Page {number}"))
    results = crawl(site.url("/"), max_pages=3)
    assert [document.title for document in loaded(results)] == ["Home", "Page 0", "Page 1"]
    assert "/p2" not in site.requests


def test_crawl_respects_robots_txt(site: LocalSite) -> None:
    site.routes["/robots.txt"] = Response(
        body=b"User-agent: *\nDisallow: /private\n\nUser-agent: NeoSupportBot\nDisallow: /drafts\n",
        content_type="text/plain",
    )
    site.page("/", link_page("Home", "/public", "/drafts/one", "/private/two"))
    site.page("/public", link_page("Public"))
    site.page("/drafts/one", link_page("Draft"))
    site.page("/private/two", link_page("Private"))
    results = crawl(site.url("/"))
    assert [document.title for document in loaded(results)] == ["Home", "Public", "Private"]
    assert "/drafts/one" not in site.requests


def test_a_start_page_disallowed_by_robots_txt_yields_an_explanation(site: LocalSite) -> None:
    site.routes["/robots.txt"] = Response(body=b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    site.page("/", link_page("Home"))
    results = crawl(site.url("/"))
    assert len(results) == 1
    assert isinstance(results[0], PageError)
    assert "robots.txt does not allow" in str(results[0])
    assert site.requests == ["/robots.txt"]


def test_a_robots_txt_that_is_forbidden_closes_the_site(site: LocalSite) -> None:
    site.routes["/robots.txt"] = Response(body=b"no", status=403)
    site.page("/", link_page("Home"))
    assert loaded(crawl(site.url("/"))) == []


def test_crawl_reads_a_sitemap(site: LocalSite) -> None:
    urlset = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{site.url("/one")}</loc></url>
  <url><loc> {site.url("/two")} </loc><lastmod>2025-01-01</lastmod></url>
  <url><loc>http://localhost:9/elsewhere</loc></url>
</urlset>"""
    site.page("/sitemap.xml", urlset, content_type="application/xml")
    site.page("/one", link_page("One", "/not-in-sitemap"))
    site.page("/two", link_page("Two"))
    results = crawl(site.url("/sitemap.xml"))
    assert [document.title for document in loaded(results)] == ["One", "Two"]
    assert "/not-in-sitemap" not in site.requests


def test_crawl_follows_a_sitemap_index(site: LocalSite) -> None:
    index = f"""<?xml version="1.0"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{site.url("/sitemap-docs.xml")}</loc></sitemap>
  <sitemap><loc>{site.url("/sitemap-missing.xml")}</loc></sitemap>
</sitemapindex>"""
    docs = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{site.url("/docs")}</loc></url></urlset>'
    site.page("/sitemap", index, content_type="text/xml")
    site.page("/sitemap-docs.xml", docs, content_type="text/xml")
    site.page("/docs", link_page("Docs"))
    results = crawl(site.url("/sitemap"))
    assert [document.title for document in loaded(results)] == ["Docs"]
    errors = [result for result in results if isinstance(result, LoaderError)]
    assert len(errors) == 1 and "sitemap-missing.xml" in str(errors[0])


def test_a_sitemap_with_an_external_entity_is_not_expanded(site: LocalSite) -> None:
    sneaky = f"""<?xml version="1.0"?>
<!DOCTYPE urlset [<!ENTITY secret SYSTEM "file:///etc/hostname">]>
<urlset><url><loc>{site.url("/page")}?leak=&secret;</loc></url></urlset>"""
    site.page("/sitemap.xml", sneaky, content_type="text/xml")
    site.page("/page?leak=", link_page("Page"))
    crawl(site.url("/sitemap.xml"))
    assert set(site.requests) <= {"/robots.txt", "/sitemap.xml", "/page?leak="}


def test_crawl_yields_an_error_for_a_failing_page_and_goes_on(site: LocalSite) -> None:
    site.page("/", link_page("Home", "/gone", "/ok"))
    site.page("/ok", link_page("OK"))
    results = crawl(site.url("/"))
    assert [type(result).__name__ for result in results] == ["LoadedDocument", "PageError", "LoadedDocument"]
    error = results[1]
    assert isinstance(error, PageError)
    assert error.url == site.url("/gone")
    assert "404" in str(error)


def test_crawl_skips_pages_that_redirect_off_site(site: LocalSite) -> None:
    site.page("/", link_page("Home", "/out", "/in"))
    site.redirect("/out", "http://localhost:9/")
    site.page("/in", link_page("In"))
    results = crawl(site.url("/"))
    assert [document.title for document in loaded(results)] == ["Home", "In"]
    assert len(results) == 2


def test_crawl_explains_a_start_page_that_redirects_off_site(site: LocalSite) -> None:
    site.redirect("/", "http://localhost:9/")
    results = crawl(site.url("/"))
    assert len(results) == 1
    assert "redirects off-site" in str(results[0])


def test_crawl_refuses_a_bad_start_url_before_any_request(no_requests: None) -> None:
    with pytest.raises(LoaderError, match="Only http:// and https://"):
        crawl_site("ftp://example.com/")
