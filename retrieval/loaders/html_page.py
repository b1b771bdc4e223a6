"""HTML pages through BeautifulSoup and lxml: page furniture dropped, headings build the heading path."""

from __future__ import annotations

from urllib.parse import urljoin

from bs4 import BeautifulSoup
from bs4.dammit import EncodingDetector
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from .base import Block, LoadedDocument, LoaderError
from .charsets import decode_declared
from .formatting import collapse_whitespace, markdown_table

NO_TEXT = "The page has no readable text (pages built by JavaScript in the browser cannot be imported)."

# Menus, banners, scripts and forms repeat on every page and answer no question.
_NOISE_TAGS = ("script", "style", "nav", "footer", "header", "aside", "noscript", "form", "template", "svg", "iframe")
# An article's own <header>/<footer> holds its title and date, not site furniture.
_ARTICLE_TAGS = ("article", "main")
_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_INLINE_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i", "img", "ins",
    "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u",
    "var", "wbr"
}  # fmt: skip
# A table holding headings or other tables lays out a page; its cells are walked, not tabulated.
_LAYOUT_TABLE_MARKERS = ["table", *_HEADING_LEVELS]
_TITLE_SEPARATORS = (" | ", " – ", " — ", " - ", " · ")
# Python's recursion limit is 1000; pathological nesting below this depth is read as flat text.
_MAX_DEPTH = 150
# BeautifulSoup needs about 1 KB of memory per tag; this keeps one page under roughly half a gigabyte.
MAX_TAGS = 500_000


def parse_html(data: bytes, *, encoding: str | None = None) -> BeautifulSoup:
    """The parsed page, decoded by `html_text`."""
    if data.count(b"<") > MAX_TAGS:
        raise LoaderError(f"The page is too large to import: it has more than {MAX_TAGS:,} tags.")
    return BeautifulSoup(html_text(data, encoding=encoding), "lxml")


def html_text(data: bytes, *, encoding: str | None = None) -> str:
    """The page as text. `encoding` from the HTTP headers comes before the page's own
    <meta charset>, but each is used only when the bytes decode in it strictly: a page that
    declares gb2312 or Shift_JIS around UTF-8 would otherwise parse to mojibake, or to an
    empty tree that reads as a page built by JavaScript (charsets.decode_declared)."""
    return decode_declared(data, [encoding, EncodingDetector.find_declared_encoding(data, is_html=True)])


def page_links(soup: BeautifulSoup, page_url: str) -> list[str]:
    """Absolute targets of the page's <a href> links, in page order (read before html_document cleans the page)."""
    base_url = page_url
    base = soup.find("base", href=True)
    if isinstance(base, Tag) and isinstance(base_href := base.get("href"), str):
        base_url = _join(page_url, base_href) or page_url
    links: list[str] = []
    for anchor in soup.find_all("a", href=True):
        if isinstance(anchor, Tag) and isinstance(href := anchor.get("href"), str):
            link = _join(base_url, href)
            if link:
                links.append(link)
    return links


def load_html(data: bytes, *, fallback_title: str, source_url: str = "", encoding: str | None = None) -> LoadedDocument:
    return html_document(parse_html(data, encoding=encoding), fallback_title=fallback_title, source_url=source_url)


def html_document(soup: BeautifulSoup, *, fallback_title: str, source_url: str = "") -> LoadedDocument:
    """Paragraphs, lists, tables, code and quotes of the page under their headings (changes `soup` in place).

    `location` is "#id" of the nearest preceding heading (or <a name>) with an id, so it can be appended
    to `source_url` to link to the passage.
    """
    page_title = _page_title(soup)
    _drop_noise(soup)
    walker = _BlockWalker(page_title)
    walker.walk(soup.body or soup, depth=0)
    walker.flush()
    if not walker.blocks:
        raise LoaderError(NO_TEXT)
    title = page_title or walker.title_heading or _first_h1(soup) or fallback_title
    return LoadedDocument(title=title, blocks=walker.blocks, content_type="text/html", source_url=source_url)


class _BlockWalker:
    def __init__(self, page_title: str) -> None:
        self.blocks: list[Block] = []
        self.title_heading = ""
        self._page_title = page_title
        self._path: list[tuple[int, str]] = []
        self._anchor = ""
        self._seen_heading = False
        self._loose_text: list[str] = []

    def walk(self, node: Tag, *, depth: int) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                self._visit(child, depth=depth + 1)
            elif _is_text(child):
                self._loose_text.append(str(child))

    def flush(self) -> None:
        """Text directly inside a <div> or <section>, outside any <p>, is a paragraph of its own."""
        self._emit(collapse_whitespace("".join(self._loose_text)))
        self._loose_text.clear()

    def _visit(self, tag: Tag, *, depth: int) -> None:
        name = tag.name
        if name == "a" and (anchor := _attribute(tag, "name")):
            self._anchor = f"#{anchor}"
        if name in _HEADING_LEVELS:
            self.flush()
            self._add_heading(_HEADING_LEVELS[name], tag)
        elif (text := _block_text(tag)) is not None:
            self.flush()
            self._emit(text)
        elif name == "br":
            self._loose_text.append("\n")
        elif depth > _MAX_DEPTH:
            self._loose_text.append(_plain_text(tag))
        elif name in _INLINE_TAGS:
            self.walk(tag, depth=depth)
        else:
            self.flush()
            self.walk(tag, depth=depth)
            self.flush()

    def _add_heading(self, level: int, tag: Tag) -> None:
        text = _text_of(tag)
        if not text:
            return
        if anchor := _heading_anchor(tag):
            self._anchor = f"#{anchor}"
        first = not self._seen_heading
        self._seen_heading = True
        if first and level == 1 and (not self._page_title or _names_same_thing(text, self._page_title)):
            self.title_heading = text  # the page's own title: not repeated in every heading path
            return
        self._path = [entry for entry in self._path if entry[0] < level] + [(level, text)]

    def _emit(self, text: str) -> None:
        if text:
            self.blocks.append(Block(text=text, heading_path=tuple(t for _, t in self._path), location=self._anchor))


def _block_text(tag: Tag) -> str | None:
    """The text of a block-level element as one Block, or None when `tag` is a container to walk into."""
    name = tag.name
    if name in ("p", "dt", "dd"):
        return _text_of(tag)
    if name in ("ul", "ol"):
        return _list_text(tag, depth=0)
    if name == "li":  # a stray item outside any list
        item = _text_of(tag)
        return f"- {item}" if item else ""
    if name == "pre":
        code = _plain_text(tag, block_edge="\n").strip("\n").rstrip()
        return f"```\n{code}\n```" if code.strip() else ""
    if name == "blockquote":
        quote = _text_of(tag)
        return f"> {quote}" if quote else ""
    if name == "table" and tag.find(_LAYOUT_TABLE_MARKERS) is None:
        return markdown_table(_table_rows(tag))
    return None


def _list_text(tag: Tag, *, depth: int) -> str:
    lines: list[str] = []
    items = [child for child in tag.children if isinstance(child, Tag) and child.name == "li"]
    for number, item in enumerate(items, start=1):
        marker = f"{number}." if tag.name == "ol" else "-"
        words: list[str] = []
        nested: list[str] = []
        for child in item.children:
            if isinstance(child, Tag) and child.name in ("ul", "ol") and depth < _MAX_DEPTH:
                nested.append(_list_text(child, depth=depth + 1))
            elif isinstance(child, Tag):
                words.append(_plain_text(child))
            elif _is_text(child):
                words.append(str(child))
        if text := collapse_whitespace("".join(words)):
            lines.append(f"{'  ' * depth}{marker} {text}")
        lines.extend(block for block in nested if block)
    return "\n".join(lines) if lines else _text_of(tag)


def _table_rows(table: Tag) -> list[list[str]]:
    rows = (row for row in table.find_all("tr") if isinstance(row, Tag) and row.find_parent("table") is table)
    return [
        [_text_of(cell) for cell in row.find_all(["td", "th"], recursive=False) if isinstance(cell, Tag)]
        for row in rows
    ]


def _drop_noise(soup: BeautifulSoup) -> None:
    # One pass with an explicit stack: find_parent() per tag, or recursion, would not survive deep nesting.
    doomed: list[Tag] = []
    stack: list[tuple[Tag, bool]] = [(soup, False)]
    while stack:
        node, in_article = stack.pop()
        for child in node.contents:
            if not isinstance(child, Tag):
                continue
            if _is_noise(child, in_article=in_article):
                doomed.append(child)
            else:
                stack.append((child, in_article or child.name in _ARTICLE_TAGS))
    for tag in doomed:
        tag.decompose()


def _is_noise(tag: Tag, *, in_article: bool) -> bool:
    if tag.has_attr("hidden"):
        return True
    if tag.name in ("header", "footer"):
        return not in_article
    return tag.name in _NOISE_TAGS


def _page_title(soup: BeautifulSoup) -> str:
    # Only the <head>'s: an inline <svg> icon in the body has a <title> of its own.
    title = soup.head.find("title") if soup.head else None
    return _without_site_name(collapse_whitespace(title.get_text())) if isinstance(title, Tag) else ""


def _without_site_name(title: str) -> str:
    """ "Pricing | Acme" becomes "Pricing"; titles with more than one separator are left alone."""
    found = [separator for separator in _TITLE_SEPARATORS if separator in title]
    if len(found) != 1 or title.count(found[0]) != 1:
        return title
    page, site = title.split(found[0])
    return page.strip() if page.strip() and 0 < len(site.strip()) <= 40 else title


def _names_same_thing(heading: str, title: str) -> bool:
    heading, title = heading.casefold(), title.casefold()
    return title == heading or title.startswith(heading)


def _first_h1(soup: BeautifulSoup) -> str:
    heading = soup.find("h1")
    return _text_of(heading) if isinstance(heading, Tag) else ""


def _heading_anchor(tag: Tag) -> str:
    """The heading's id, else an id or name on an anchor inside it (`<h2><a name="faq"></a>FAQ</h2>`)."""
    if anchor := _attribute(tag, "id"):
        return anchor
    for inner in tag.find_all(["a", "span"], limit=5):
        if isinstance(inner, Tag) and (anchor := _attribute(inner, "id") or _attribute(inner, "name")):
            return anchor
    return ""


def _attribute(tag: Tag, name: str) -> str:
    value = tag.get(name)
    return value.strip() if isinstance(value, str) else ""


def _text_of(tag: Tag) -> str:
    return collapse_whitespace(_plain_text(tag))


def _plain_text(tag: Tag, *, block_edge: str = " ") -> str:
    """Like get_text(), but words of neighbouring block elements and <br>-separated lines stay apart.

    Walks with an explicit stack; no recursion, and no tree edits (bs4's insert() is slow on deep trees).
    """
    parts: list[str] = []
    stack: list[PageElement | None] = [tag]
    while stack:
        node = stack.pop()
        if node is None:  # the end of a block element
            parts.append(block_edge)
        elif isinstance(node, Tag):
            if node.name == "br":
                parts.append("\n")
                continue
            if node.name not in _INLINE_TAGS:
                parts.append(block_edge)
                stack.append(None)
            stack.extend(reversed(node.contents))
        elif _is_text(node):
            parts.append(str(node))
    return "".join(parts)


def _is_text(node: object) -> bool:
    # Comments, doctypes and CDATA are NavigableStrings too, but no reader sees them.
    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


def _join(base: str, href: str) -> str:
    try:
        return urljoin(base, href.strip())
    except ValueError:  # e.g. a malformed IPv6 host in the link
        return ""
