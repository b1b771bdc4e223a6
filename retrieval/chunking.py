"""Heading-aware, token-based chunking. Pure Python: blocks in, chunk drafts out.

- A section is a run of blocks under the same heading path; chunks never span
  two sections, so every chunk has one heading path.
- Within a section, sentences (and list or table lines) are packed up to
  `chunk_size` tokens; a chunk ends between sentences, never inside one unless a
  single sentence is longer than a whole chunk.
- Neighbouring chunks of a section share whole sentences up to `chunk_overlap`
  tokens.
- FAQ entries (a heading ending in "?" and its answer) stay one chunk, up to
  `FAQ_MAX_FACTOR` times the chunk size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.loaders.base import Block

# Counts tokens for many strings at once (one tokenizer call per document).
TokenCounter = Callable[[Sequence[str]], list[int]]

FAQ_MAX_FACTOR = 3
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "st", "no", "fig", "approx", "inc", "ltd"}
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
_LINE_BLOCK = re.compile(r"^\s*([-*+|>]|\d+[.)])\s", re.M)


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    heading_path: tuple[str, ...]
    location: str
    token_count: int


@dataclass(frozen=True)
class _Unit:
    """A sentence or line: the smallest piece a chunk is built from."""

    text: str
    tokens: int
    location: str
    starts_block: bool


def whitespace_token_counter(texts: Sequence[str]) -> list[int]:
    """A tokenizer-free approximation (about 1.3 word pieces per word), for tests and tools."""
    return [max(1, round(len(text.split()) * 1.3)) if text.strip() else 0 for text in texts]


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences; lists, tables and quotes split into their lines."""
    text = text.strip()
    if not text:
        return []
    if _LINE_BLOCK.search(text) or "\n```" in f"\n{text}":
        return [line for line in text.splitlines() if line.strip()]
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            candidate = paragraph[start : match.start()]
            last_word = candidate.rsplit(" ", 1)[-1].rstrip(".").lower()
            if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
                continue
            pieces.append(paragraph[start : match.end()].strip())
            start = match.end()
        if paragraph[start:].strip():
            pieces.append(paragraph[start:].strip())
    return pieces


def chunk_blocks(
    blocks: Sequence[Block],
    *,
    chunk_size: int,
    chunk_overlap: int,
    count_tokens: TokenCounter = whitespace_token_counter,
) -> list[ChunkDraft]:
    if chunk_size < 8:
        raise ValueError("chunk_size must be at least 8 tokens")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and less than chunk_size")
    sections = _sections(blocks)
    texts = [sentence for section in sections for block in section for sentence in split_sentences(block.text)]
    counts = iter(count_tokens(texts))
    chunks: list[ChunkDraft] = []
    for section in sections:
        units = [
            _Unit(sentence, next(counts), block.location, starts_block=index == 0)
            for block in section
            for index, sentence in enumerate(split_sentences(block.text))
        ]
        if not units:
            continue
        heading_path = section[0].heading_path
        total = sum(unit.tokens for unit in units)
        if _is_faq(heading_path) and total <= chunk_size * FAQ_MAX_FACTOR:
            chunks.append(_draft(units, heading_path, total))
            continue
        chunks.extend(_pack(units, heading_path, chunk_size=chunk_size, chunk_overlap=chunk_overlap))
    return chunks


def _sections(blocks: Sequence[Block]) -> list[list[Block]]:
    sections: list[list[Block]] = []
    for block in blocks:
        if not block.text.strip():
            continue
        if sections and sections[-1][0].heading_path == block.heading_path:
            sections[-1].append(block)
        else:
            sections.append([block])
    return sections


def _is_faq(heading_path: tuple[str, ...]) -> bool:
    return bool(heading_path) and heading_path[-1].rstrip().endswith("?")


def _pack(
    units: list[_Unit], heading_path: tuple[str, ...], *, chunk_size: int, chunk_overlap: int
) -> list[ChunkDraft]:
    units = [piece for unit in units for piece in _split_oversized(unit, chunk_size)]
    chunks: list[ChunkDraft] = []
    current: list[_Unit] = []
    tokens = 0
    for unit in units:
        if current and tokens + unit.tokens > chunk_size:
            chunks.append(_draft(current, heading_path, tokens))
            current = _overlap_tail(current, chunk_overlap, room=chunk_size - unit.tokens)
            tokens = sum(kept.tokens for kept in current)
        current.append(unit)
        tokens += unit.tokens
    if current:  # always holds at least the last unit, which no earlier chunk has
        chunks.append(_draft(current, heading_path, tokens))
    return chunks


def _overlap_tail(units: list[_Unit], overlap: int, *, room: int) -> list[_Unit]:
    """The last whole sentences of `units` that fit in `overlap` tokens (and in the room left)."""
    budget = min(overlap, room)
    tail: list[_Unit] = []
    for unit in reversed(units):
        if unit.tokens > budget:
            break
        tail.insert(0, unit)
        budget -= unit.tokens
    return tail


def _split_oversized(unit: _Unit, chunk_size: int) -> list[_Unit]:
    """A sentence longer than a chunk is cut at word boundaries, in proportion to its tokens."""
    if unit.tokens <= chunk_size:
        return [unit]
    words = unit.text.split()
    words_per_piece = max(1, int(len(words) * chunk_size / unit.tokens))
    pieces = [words[i : i + words_per_piece] for i in range(0, len(words), words_per_piece)]
    return [
        _Unit(
            " ".join(piece),
            min(chunk_size, max(1, round(unit.tokens * len(piece) / len(words)))),
            unit.location,
            i == 0,
        )
        for i, piece in enumerate(pieces)
    ]


def _draft(units: list[_Unit], heading_path: tuple[str, ...], tokens: int) -> ChunkDraft:
    text = ""
    for index, unit in enumerate(units):
        if index == 0:
            text = unit.text
        elif unit.starts_block or _is_line(unit.text) or _is_line(units[index - 1].text):
            text += ("\n\n" if unit.starts_block else "\n") + unit.text
        else:
            text += " " + unit.text
    return ChunkDraft(text=text, heading_path=heading_path, location=_span(units), token_count=tokens)


def _span(units: list[_Unit]) -> str:
    """Where a chunk is: its first unit's location, or "pages 2–3" when it runs across pages."""
    locations = list(dict.fromkeys(unit.location for unit in units if unit.location))
    if len(locations) > 1 and all(location.startswith("page ") for location in locations):
        return f"pages {locations[0][5:]}–{locations[-1][5:]}"
    return locations[0] if locations else ""


def _is_line(text: str) -> bool:
    return bool(_LINE_BLOCK.match(text))


def indexed_text(*, title: str, heading_path: Sequence[str], text: str) -> str:
    """What gets embedded and keyword-indexed for a chunk: where it sits, then what it says.

    The title and headings carry the topic that a passage's own sentences often
    leave implicit ("It takes five days" under "Refunds").
    """
    context = [title, *heading_path] if title else list(heading_path)
    # A chunk that opens with its document's title (a text whose first line names it) says
    # it once, not twice.
    opening = " ".join(text.split("\n", 1)[0].split())
    lines = [
        part
        for index, part in enumerate(context)
        if part and part not in context[:index] and " ".join(part.split()) != opening
    ]
    return "\n".join([*lines, text])
