"""Which web pages may open a bot's chat: the bot's allowed origins.

Entries are origins (`https://example.com`, `http://localhost:8000`) or a wildcard
for subdomains (`https://*.example.com`, which does not match `example.com` itself).
A bot with no entries is reachable only from this server's own pages (the demo page
and the dashboard), so a copied snippet does nothing on someone else's site.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def normalise_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case, default ports dropped; None if not an origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(origin: str | None, *, allowed: list[str], own_host: str | None, secure: bool) -> bool:
    """True when a page at `origin` may use the bot. `own_host` is the Host header the
    request came in on; `secure` whether it came over TLS."""
    if not origin:
        return False
    page = normalise_origin(origin)
    if page is None:
        return False
    if own_host:
        own = normalise_origin(f"{'https' if secure else 'http'}://{own_host}")
        if page == own:
            return True
    for entry in allowed:
        entry = entry.strip().lower()
        if "://*." in entry:
            scheme, _, suffix = entry.partition("://*.")
            suffix_origin = normalise_origin(f"{scheme}://{suffix}")
            if suffix_origin is None:
                continue
            page_scheme, _, page_rest = page.partition("://")
            suffix_rest = suffix_origin.partition("://")[2]
            if page_scheme == scheme and page_rest.endswith("." + suffix_rest):
                return True
        elif normalise_origin(entry) == page:
            return True
    return False
