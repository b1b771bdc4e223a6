"""Markdown through markdown-it-py: headings build the heading path, blocks keep their Markdown source."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from bs4 import BeautifulSoup
from markdown_it import MarkdownIt
from markdown_it.token import Token

from .base import Block, LoadedDocument, LoaderError
from .formatting import normalize_newlines

NO_TEXT = "The Markdown document has no text."

# Blocks keep their source lines, so only block structure is parsed; inline parsing (emphasis, links)
# is what gets slow on adversarial input, and it runs on heading text alone, capped in length.
_BLOCK_PARSER = MarkdownIt("commonmark").enable("table").disable("inline")
_INLINE_PARSER = MarkdownIt("commonmark")
_MAX_HEADING_CHARS = 1000
# The token list of a large document takes ~100x its size in memory; parsing section by section keeps
# that bounded. Sections end at a blank line before an unindented line outside a code fence.
SECTION_CHARS = 256 * 1024

_INLINE_MARKUP = re.compile(r"[*_`\[\]<>!\\&]")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")
_FRONT_MATTER_TITLE = re.compile(r"^title\s*:\s*(.+?)\s*$", re.IGNORECASE)


def load_markdown(text: str, *, fallback_title: str, content_type: str = "text/markdown") -> LoadedDocument:
    """Blocks (paragraphs, lists, tables, code, quotes) under their headings, located at the heading's anchor.

    The first heading, when it is an H1, is the document title: it is kept out of the heading paths.
    A `title:` in YAML front matter also names the document.
    """
    lines = normalize_newlines(text).split("\n")
    front_matter_title, body_start = _front_matter(lines)
    builder = _BlockBuilder()
    for start, end in _sections(lines, body_start):
        builder.add_tokens(_BLOCK_PARSER.parse("\n".join(lines[start:end])), lines[start:end])
    if not builder.blocks:
        raise LoaderError(NO_TEXT)
    title = front_matter_title or builder.title or fallback_title
    return LoadedDocument(title=title, blocks=builder.blocks, content_type=content_type)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = (
        character
        for character in heading.strip().lower()
        if character in " -_" or character.isalnum() or unicodedata.category(character).startswith("M")
    )
    return "".join(kept).replace(" ", "-")


class _BlockBuilder:
    """Turns block tokens into Blocks, carrying the heading trail from one section to the next."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.title = ""
        self._path: list[tuple[int, str]] = []
        self._anchor = ""
        self._slug_counts: dict[str, int] = {}
        self._seen_heading = False

    def add_tokens(self, tokens: list[Token], lines: list[str]) -> None:
        for index, token in enumerate(tokens):
            # Only top-level openers and leaf blocks: a list's items are part of the list's block.
            if token.level != 0 or token.nesting == -1 or token.map is None:
                continue
            if token.type == "heading_open":
                self._add_heading(int(token.tag[1]), _heading_text(tokens[index + 1].content))
            elif token.type == "html_block":
                self._add_block(_html_text(token.content))
            elif token.type != "hr":
                start, end = token.map
                self._add_block("\n".join(lines[start:end]).strip("\n").rstrip())

    def _add_heading(self, level: int, text: str) -> None:
        if not text:
            return
        self._anchor = self._unique_slug(text)
        if not self._seen_heading and level == 1:
            self._seen_heading = True
            self.title = text
            return
        self._seen_heading = True
        self._path = [entry for entry in self._path if entry[0] < level] + [(level, text)]

    def _add_block(self, text: str) -> None:
        if text.strip():
            location = f"#{self._anchor}" if self._anchor else ""
            self.blocks.append(Block(text=text, heading_path=tuple(t for _, t in self._path), location=location))

    def _unique_slug(self, text: str) -> str:
        # GitHub numbers repeated headings: "faq", "faq-1", "faq-2".
        slug = github_slug(text)
        count = self._slug_counts.get(slug, 0)
        self._slug_counts[slug] = count + 1
        return slug if count == 0 else f"{slug}-{count}"


def _heading_text(source: str) -> str:
    """The heading as a reader sees it: emphasis marks and link targets gone, words and "?" kept."""
    source = " ".join(source[:_MAX_HEADING_CHARS].split())
    if not _INLINE_MARKUP.search(source):
        return source  # most headings are plain words; the inline parser costs ~20 µs each
    tokens = _INLINE_PARSER.parseInline(source)
    children = (tokens[0].children or []) if tokens else []
    return " ".join("".join(_inline_text(child) for child in children).split())


def _inline_text(token: Token) -> str:
    if token.type in ("text", "code_inline"):
        return token.content
    if token.type in ("softbreak", "hardbreak"):
        return " "
    if token.type == "image":
        return "".join(_inline_text(child) for child in token.children or [])
    return ""


def _html_text(source: str) -> str:
    return BeautifulSoup(source, "lxml").get_text(" ", strip=True)


def _front_matter(lines: list[str]) -> tuple[str, int]:
    """The `title:` of YAML front matter and the first line after it; ("", 0) when there is none."""
    if not lines or lines[0].strip() != "---":
        return "", 0
    for end in range(1, min(len(lines), 200)):
        if lines[end].strip() in ("---", "..."):
            block = lines[1:end]
            if not any(_FRONT_MATTER_KEY.match(line) for line in block):
                return "", 0
            titles = (match.group(1).strip("'\"") for line in block if (match := _FRONT_MATTER_TITLE.match(line)))
            return next(titles, ""), end + 1
    return "", 0


def _sections(lines: list[str], start: int) -> Iterator[tuple[int, int]]:
    """Line ranges of about SECTION_CHARS each, cut only where no block can continue across the cut."""
    size = 0
    fence: str | None = None
    for index in range(start, len(lines)):
        line = lines[index]
        size += len(line) + 1
        fence = _fence_after(line, fence)
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if size >= SECTION_CHARS and fence is None and not line.strip() and next_line[:1] not in ("", " ", "\t"):
            yield start, index + 1
            start, size = index + 1, 0
    if start < len(lines):
        yield start, len(lines)


def _fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence marker after `line`, or None when outside a fence."""
    match = _FENCE.match(line)
    if match is None:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    closes = marker[0] == fence[0] and len(marker) >= len(fence) and not line.strip().lstrip(marker[0])
    return None if closes else fence
