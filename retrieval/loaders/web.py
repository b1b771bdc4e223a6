"""Web import: one page (fetch_url) or a whole site (crawl_site), through the SSRF-safe fetcher."""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urldefrag, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from lxml import etree

from .base import LoadedDocument, LoaderError
from .files import SUPPORTED_EXTENSIONS, load_media, without_control_characters
from .html_page import html_document, page_links, parse_html
from .safe_http import (
    FetchedResource,
    FetchPolicy,
    HttpStatusError,
    OffSiteRedirectError,
    checked_target,
    fetch,
    site_of,
)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_USER_AGENT = "NeoSupportBot/1.0"

_MEDIA_TYPES = {
    "text/html": "text/html",
    "application/xhtml+xml": "text/html",
    "text/plain": "text/plain",
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "application/pdf": "application/pdf",
}
# Links to these are files, not pages; fetching them would only waste the page budget.
_SKIPPED_EXTENSIONS = {
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".ico", ".bmp", ".tif", ".tiff", ".avif", ".mp3", ".mp4",
    ".m4a", ".wav", ".ogg", ".avi", ".mov", ".webm", ".mkv", ".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z",
    ".rar", ".exe", ".msi", ".dmg", ".pkg", ".deb", ".rpm", ".apk", ".iso", ".bin", ".css", ".js", ".mjs", ".json",
    ".xml", ".rss", ".atom", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".pdf", ".doc", ".docx", ".xls", ".xlsx",
    ".ppt", ".pptx", ".csv"
}  # fmt: skip
# A sitemap index may list many sitemaps; a crawl reads no more than this many of them.
_MAX_SITEMAPS = 20


class PageError(LoaderError):
    """A crawled page that could not be loaded; `url` says which."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message if url in message else f"{url}: {message}")
        self.url = url


def fetch_url(
    url: str,
    *,
    allow_private: bool = False,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    user_agent: str = DEFAULT_USER_AGENT,
) -> LoadedDocument:
    """Fetch one page (HTML, plain text, Markdown or PDF) and load it; `source_url` is the URL after redirects.

    Raises LoaderError when the URL is refused (not http(s), credentials, private address unless
    `allow_private`), redirects off-site, times out (`timeout` seconds for the whole response), fails
    with an HTTP error, is larger than `max_bytes` or has a content type we cannot import.
    """
    policy = FetchPolicy(allow_private=allow_private, timeout=timeout, max_bytes=max_bytes, user_agent=user_agent)
    document, _ = _load_page(url, policy=policy, site=site_of(url))
    return document


def crawl_site(
    start_url: str,
    *,
    max_pages: int = 50,
    allow_private: bool = False,
    timeout: float = 10.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    user_agent: str = DEFAULT_USER_AGENT,
) -> Iterator[LoadedDocument | LoaderError]:
    """Crawl a site from `start_url`, yielding a LoadedDocument per page or a PageError for a page that failed.

    A start URL ending in ".xml" or "sitemap" is read as a sitemap (or sitemap index) listing the pages;
    otherwise same-site links are followed breadth-first from the start page. robots.txt is obeyed for
    `user_agent`; pages that redirect off-site are skipped. At most `max_pages` pages are yielded.
    A start URL that is refused outright (scheme, credentials, private address) raises LoaderError here,
    before any request.
    """
    checked_target(start_url, allow_private=allow_private)
    start = _normalized(start_url.strip()) or start_url
    policy = FetchPolicy(allow_private=allow_private, timeout=timeout, max_bytes=max_bytes, user_agent=user_agent)
    return _crawl(start, max_pages=max_pages, policy=policy)


def _crawl(start: str, *, max_pages: int, policy: FetchPolicy) -> Iterator[LoadedDocument | LoaderError]:
    site = site_of(start)
    robots = _robots(start, policy=policy, site=site)
    follow_links = not _looks_like_sitemap(start)
    if follow_links:
        queue = deque([start])
    else:
        pages, errors = _sitemap_pages(start, policy=policy, site=site, limit=max_pages * 4)
        yield from errors
        queue = deque(pages)
        if not pages and not errors:
            yield PageError(start, "The sitemap lists no pages of this site.")
    seen = set(queue)
    loaded = 0
    while queue and loaded < max_pages:
        url = queue.popleft()
        if not robots.can_fetch(policy.user_agent, url):
            if url == start:
                yield PageError(url, f"The site's robots.txt does not allow {policy.user_agent} to fetch {url}.")
            continue
        try:
            document, links = _load_page(url, policy=policy, site=site)
        except OffSiteRedirectError as error:
            if url == start:  # otherwise the crawl would end with nothing to show and no reason given
                yield PageError(url, str(error))
            continue
        except LoaderError as error:
            loaded += 1
            yield PageError(url, str(error))
            continue
        loaded += 1
        seen.add(document.source_url)
        yield document
        if follow_links:
            for link in links:
                if (target := _crawlable(link, site)) is not None and target not in seen:
                    seen.add(target)
                    queue.append(target)


def _load_page(url: str, *, policy: FetchPolicy, site: str) -> tuple[LoadedDocument, list[str]]:
    """The page as a document, and the links on it (HTML pages only)."""
    resource = fetch(url, policy=policy, site=site)
    media_type = _media_type(resource)
    title = _title_from_url(resource.url)
    if media_type == "text/html":
        soup = parse_html(resource.body, encoding=resource.charset)
        links = page_links(soup, resource.url)
        return without_control_characters(html_document(soup, fallback_title=title, source_url=resource.url)), links
    text = _decode_declared(resource) if media_type != "application/pdf" else None
    document = load_media(resource.body, media_type=media_type, fallback_title=title, text=text)
    return dataclasses.replace(document, source_url=resource.url), []


def _media_type(resource: FetchedResource) -> str:
    extension = PurePosixPath(urlsplit(resource.url).path).suffix.lower()
    declared = _MEDIA_TYPES.get(resource.media_type)
    # Servers send Markdown as text/plain, and files without any type: the extension settles those.
    if declared == "text/plain" and SUPPORTED_EXTENSIONS.get(extension) == "text/markdown":
        return "text/markdown"
    if declared is None and resource.media_type in ("", "application/octet-stream"):
        declared = _MEDIA_TYPES.get(SUPPORTED_EXTENSIONS.get(extension, ""))
    if declared is None or not resource.body.strip():
        shown = resource.media_type or "of no declared type"
        raise LoaderError(
            f"{resource.url} is empty." if declared else f"{resource.url} is {shown}, which cannot be imported."
        )
    return declared


def _decode_declared(resource: FetchedResource) -> str | None:
    """The body decoded with the charset the server named, or None to let the text loader detect it."""
    if not resource.charset:
        return None
    try:
        return resource.body.decode(resource.charset)
    except (LookupError, UnicodeDecodeError):
        return None


def _title_from_url(url: str) -> str:
    parts = urlsplit(url)
    name = PurePosixPath(unquote(parts.path)).stem
    return name or parts.hostname or url


def _robots(start: str, *, policy: FetchPolicy, site: str) -> RobotFileParser:
    """The site's robots.txt rules. Missing (4xx) means all allowed; 401/403 and server errors mean none (RFC 9309)."""
    parts = urlsplit(start)
    robots_url = urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))
    parser = RobotFileParser(robots_url)
    try:
        resource = fetch(robots_url, policy=policy, site=site)
    except HttpStatusError as error:
        closed = error.status_code in (401, 403) or error.status_code >= 500
        rules = ["User-agent: *", "Disallow: /"] if closed else []
    except LoaderError:
        # Unreachable or redirected away: there are no rules to read, and the pages will tell if it is down.
        rules = []
    else:
        rules = resource.body.decode("utf-8", errors="replace").splitlines()
    parser.parse(rules)
    parser.modified()  # can_fetch() answers False for a parser it thinks was never read
    return parser


def _looks_like_sitemap(url: str) -> bool:
    path = urlsplit(url).path.lower().rstrip("/")
    return path.endswith((".xml", "sitemap"))


def _sitemap_pages(start: str, *, policy: FetchPolicy, site: str, limit: int) -> tuple[list[str], list[LoaderError]]:
    """Same-site page URLs listed by the sitemap (following sitemap indexes), and sitemaps that failed."""
    pages: list[str] = []
    errors: list[LoaderError] = []
    pending = deque([start])
    read: set[str] = set()
    while pending and len(read) < _MAX_SITEMAPS and len(pages) < limit:
        sitemap = pending.popleft()
        read.add(sitemap)
        try:
            is_index, locations = parse_sitemap(fetch(sitemap, policy=policy, site=site).body)
        except LoaderError as error:
            errors.append(PageError(sitemap, str(error)))
            continue
        for location in locations:
            target = _normalized(location)
            if target is None or site_of(target) != site:
                continue
            if is_index and target not in read:
                pending.append(target)
            elif not is_index and target not in pages:
                pages.append(target)
    return pages[:limit], errors


def parse_sitemap(body: bytes) -> tuple[bool, list[str]]:
    """(is a sitemap index, the <loc> URLs) of a sitemap or sitemap index; LoaderError if it is not XML."""
    # No DTDs, no entities, no network: a sitemap is untrusted XML.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.LxmlError as exc:
        raise LoaderError("The sitemap is not valid XML.") from exc
    if root is None:
        raise LoaderError("The sitemap is not valid XML.")
    locations = [element.text.strip() for element in root.iter() if _local_name(element) == "loc" and element.text]
    return _local_name(root) == "sitemapindex", locations


def _local_name(element: Any) -> str:
    """The tag without its namespace ("loc"), or "" for comments and other nodes that are not elements."""
    # Not etree.QName: it raises on the odd names lxml's recovering parser lets through.
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _crawlable(link: str, site: str) -> str | None:
    """The link without its fragment when it is a same-site page worth fetching, else None."""
    target = _normalized(link)
    if target is None or site_of(target) != site:
        return None
    if PurePosixPath(urlsplit(target).path).suffix.lower() in _SKIPPED_EXTENSIONS:
        return None
    return target


def _normalized(url: str) -> str | None:
    """http(s) URL without fragment, scheme and host in lower case, "/" for an empty path; None otherwise."""
    try:
        parts = urlsplit(urldefrag(url)[0])
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))
