"""GET requests for web import that cannot be turned against our own network (SSRF).

Every hop's host is resolved and every address checked before connecting, and the connection goes to
the address that was checked: a second DNS answer (DNS rebinding) never gets a say. Redirects are
followed by hand, only within the site; bodies are size- and time-limited while they stream in.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from .base import LoaderError
from .formatting import megabytes

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_ACCEPT = "text/html, application/xhtml+xml, text/markdown, text/plain, application/pdf;q=0.9, */*;q=0.1"
# NAT64 addresses carry an IPv4 address in their last 32 bits; that address is what gets reached.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    allow_private: bool = False
    timeout: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    user_agent: str = "NeoSupportBot/1.0"


@dataclass(frozen=True)
class FetchedResource:
    url: str  # after redirects
    media_type: str  # "text/html", without parameters
    charset: str | None
    body: bytes


class OffSiteRedirectError(LoaderError):
    """The URL redirects to another site; a crawl skips such pages, fetch_url reports them."""


class HttpStatusError(LoaderError):
    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    addresses: list[str]


def site_of(url: str) -> str:
    """The host that names the site: "www.example.com" and "example.com" are one site."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().rstrip(".").removeprefix("www.")


def fetch(url: str, *, policy: FetchPolicy, site: str | None = None) -> FetchedResource:
    """GET `url`, following up to MAX_REDIRECTS redirects within `site` (by default the URL's own site).

    Raises LoaderError for refused, unreachable, failing (HttpStatusError), oversize or slow requests,
    and OffSiteRedirectError for a redirect to another site (which is not contacted).
    """
    site = site_of(url) if site is None else site
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        outcome = _get(checked_target(current, allow_private=policy.allow_private), policy)
        if isinstance(outcome, FetchedResource):
            return outcome
        if site_of(outcome) != site:
            raise OffSiteRedirectError(
                f"{current} redirects off-site to {outcome}; only pages of the same site are imported."
            )
        current = outcome
    raise LoaderError(f"{url} redirects more than {MAX_REDIRECTS} times.")


def checked_target(url: str, *, allow_private: bool) -> _Target:
    """Parse `url` and resolve its host; LoaderError unless it is http(s) without credentials on public addresses."""
    try:
        parsed = httpx.URL(url.strip())
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise LoaderError(f"{url} is not a valid web address.") from exc
    if parsed.scheme not in ("http", "https"):
        raise LoaderError(f"Only http:// and https:// addresses can be imported, not {url}.")
    if parsed.userinfo:
        # The message leaves the URL out: it holds a password.
        raise LoaderError("Web addresses with a user name or password in them (user:pass@) are not allowed.")
    if not host:
        raise LoaderError(f"{url} has no host name.")
    if not 0 < port < 65536:
        # getaddrinfo() would quietly wrap port 99999 round to 34463.
        raise LoaderError(f"{url} is not a valid web address.")
    addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise LoaderError(
                    f"{url} points at a private/internal address ({address}); "
                    "only public web addresses can be imported."
                )
    return _Target(url=parsed, addresses=addresses)


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved, unspecified and other non-global addresses."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
    blocked = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
    return not (blocked or ip.is_unspecified) and ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, 6to4 or NAT64 IPv6 address leads to: that is the one to check."""
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _resolve(host: str, port: int) -> list[str]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise LoaderError(f"The host {host} could not be found.") from exc
    addresses = list(dict.fromkeys(str(answer[4][0]) for answer in answers))
    if not addresses:
        raise LoaderError(f"The host {host} could not be found.")
    return addresses


def _get(target: _Target, policy: FetchPolicy) -> FetchedResource | str:
    """The resource, or the URL a redirect points to. Tries each checked address until one connects."""
    url = str(target.url)
    deadline = time.monotonic() + policy.timeout
    failure: httpx.ConnectError | None = None
    try:
        for address in target.addresses:
            try:
                return _get_from(address, target, policy, deadline)
            except httpx.ConnectError as exc:
                failure = exc
    except httpx.TimeoutException as exc:
        raise LoaderError(f"{url} timed out after {policy.timeout:g} s.") from exc
    except httpx.HTTPError as exc:
        raise LoaderError(f"Fetching {url} failed: {exc}") from exc
    raise LoaderError(f"Could not connect to {target.url.host}: {failure}")


def _get_from(address: str, target: _Target, policy: FetchPolicy, deadline: float) -> FetchedResource | str:
    url = str(target.url)
    headers = {"Host": target.url.netloc.decode("ascii"), "User-Agent": policy.user_agent, "Accept": _ACCEPT}
    # TLS still checks the certificate against the host name, sent as SNI, not against the address.
    extensions = {"sni_hostname": target.url.raw_host.decode("ascii")} if target.url.scheme == "https" else {}
    with (
        httpx.Client(timeout=policy.timeout, follow_redirects=False, trust_env=False) as client,
        client.stream("GET", target.url.copy_with(host=address), headers=headers, extensions=extensions) as response,
    ):
        location = response.headers.get("location")
        if response.status_code in _REDIRECT_STATUSES and location:
            return urljoin(url, str(location).strip())
        if not response.is_success:
            reason = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise HttpStatusError(
                f"{url} returned HTTP {response.status_code}{reason}.", status_code=response.status_code
            )
        body = _read_body(response, url, policy, deadline)
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        return FetchedResource(url=url, media_type=media_type, charset=response.charset_encoding, body=body)


def _read_body(response: httpx.Response, url: str, policy: FetchPolicy, deadline: float) -> bytes:
    too_large = f"{url} is larger than the {megabytes(policy.max_bytes)} MB limit."
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > policy.max_bytes:
        raise LoaderError(too_large)
    chunks: list[bytes] = []
    size = 0
    # Counted after decompression, so a small gzip body cannot unpack past the limit either.
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > policy.max_bytes:
            raise LoaderError(too_large)
        # A server that drips one byte at a time never trips the read timeout.
        if time.monotonic() > deadline:
            raise LoaderError(f"{url} timed out after {policy.timeout:g} s.")
        chunks.append(chunk)
    return b"".join(chunks)
