"""Bot and agent text as people read it: the safe Markdown subset the widget renders
(bots/static/bots/widget.js, `markdown`), as HTML for the dashboard's transcripts and
ticket threads.

Paragraphs split by blank lines, a block whose every line is a bullet ("- ", "* ") or a
number ("1. ", "2) ") becomes a list, and inline **bold**, *emphasis*, `code`,
[links](https://...) (http and https only) and citation markers [n]. Everything else is
escaped: nothing a visitor, a model or a document says becomes HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit

_INLINE = re.compile(
    r"(\*\*([^*]+)\*\*)|(\*([^*]+)\*)|(`([^`]+)`)|(\[([^\]]+)\]\((https?://[^\s)]+)\))|(\[(\d{1,2})\])"
)
_BULLET = re.compile(r"^\s*[-*]\s+")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+")
_MARKER = re.compile(r"^\s*([-*]|\d+[.)])\s+")


def citation_label(citation: Mapping[str, Any]) -> str:
    """What a reader sees of a citation: the document's title and the heading it points
    at in words (its `heading` when known, else `#i-lost-my-phone` reads "I lost my
    phone"), or the page ("page 3")."""
    title = str(citation.get("title") or "Source")
    location = str(citation.get("heading") or "").strip() or str(citation.get("location") or "")
    if location.startswith("#"):
        words = location[1:].replace("-", " ").replace("_", " ").strip()
        location = words[:1].upper() + words[1:]
    if location.casefold() == title.casefold():  # the anchor of the document's own title
        location = ""
    return f"{title} — {location}" if location else title


def citation_url(citation: Mapping[str, Any]) -> str:
    """The citation's link when it has an http(s) one, else ""."""
    url = str(citation.get("url") or "")
    return url if url.startswith(("http://", "https://")) else ""


def _web_address(url: str) -> bool:
    return url.startswith(("http://", "https://")) and bool(urlsplit(url).netloc)


def citation_link(*, source_url: str, public_base_url: str, location: str) -> str:
    """Where a citation links: the page its document came from, else the knowledge base's
    public help centre (`KnowledgeBase.public_base_url`), with the passage's heading
    anchor when its location is one ("#refunds"); "" when there is neither. An address
    that already has a fragment keeps it (it may be a single-page app's route)."""
    anchor = location[1:].strip() if location.startswith("#") else ""
    for url in (source_url.strip(), public_base_url.strip()):
        if _web_address(url):
            if anchor and "#" not in url:
                return f"{url}#{quote(anchor, safe='-_.~!$&()*+,;=:@/?%')}"
            return url
    return ""


def _inline(text: str, citations: Sequence[Mapping[str, Any]]) -> str:
    out: list[str] = []
    last = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[last : match.start()]))
        if match.group(1):
            out.append(f"<strong>{escape(match.group(2))}</strong>")
        elif match.group(3):
            out.append(f"<em>{escape(match.group(4))}</em>")
        elif match.group(5):
            out.append(f"<code>{escape(match.group(6))}</code>")
        elif match.group(7):
            out.append(
                f'<a href="{escape(match.group(9))}" target="_blank" rel="noopener noreferrer nofollow">'
                f"{escape(match.group(8))}</a>"
            )
        else:
            number = int(match.group(11))
            cite = next((c for c in citations if c.get("number") == number), None)
            if cite is None:
                out.append(f'<span class="cite">{number}</span>')
            elif url := citation_url(cite):
                out.append(
                    f'<a class="cite" href="{escape(url)}" title="{escape(citation_label(cite))}" '
                    f'target="_blank" rel="noopener noreferrer">{number}</a>'
                )
            else:
                out.append(f'<span class="cite" title="{escape(citation_label(cite))}">{number}</span>')
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def render_markdown(text: str, citations: Sequence[Mapping[str, Any]] = ()) -> str:
    """`text` as safe HTML (see the module's docstring)."""
    blocks = []
    for block in re.split(r"\n{2,}", text.replace("\r\n", "\n")):
        if not block.strip():
            continue
        lines = block.split("\n")
        bullet = all(_BULLET.match(line) for line in lines)
        numbered = all(_NUMBERED.match(line) for line in lines)
        if bullet or numbered:
            tag = "ul" if bullet else "ol"
            items = "".join(f"<li>{_inline(_MARKER.sub('', line), citations)}</li>" for line in lines)
            blocks.append(f"<{tag}>{items}</{tag}>")
        else:
            blocks.append("<p>" + "<br>".join(_inline(line, citations) for line in lines) + "</p>")
    return "".join(blocks)
