"""Extractive answers: the pieces of the passages that answer the question, quoted
and cited. Used when a bot asks for it or no generation model is loaded. Pure Python,
fast enough to run on every quoted reply.

- A passage is read as pieces: its prose as sentences, and each list (bullets or numbers,
  with the sentence ending in ":" that introduces it) as one piece, quoted as a list,
  one item a line, so the Markdown renderers show a list and a step never leaves it.
- A piece is scored by the question's words it holds, weighted by how rare each is among
  the passages, and read under its passage's title and headings too: under "I lost my
  phone, how do I sign in?", "Choose Use a backup code" answers a lost-phone question.
- A passage is scored by its best piece, how much of the question it covers and how much
  its headings do, discounted by its retrieval rank. The best passage is quoted; a
  second one only when it is nearly as good, and only for question words the first
  leaves unsaid, so a passage that merely mentions them adds nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from retrieval.chunking import split_sentences
from retrieval.lexical import tokenize
from workers.generation.prompt import Passage

MAX_SENTENCES = 3  # pieces quoted in all: sentences, or a whole list counted as one
MAX_PASSAGES = 2
MAX_LIST_ITEMS = 8
RANK_DECAY = 0.25  # rank r weighs 1 / (1 + RANK_DECAY * r): retrieval's order still counts
SECOND_PASSAGE_SHARE = 0.8  # a second passage is quoted when it scores this share of the best
KEEP_SHARE = 0.5  # a piece is quoted when it scores this share of the best piece

_ITEM = re.compile(r"^(\s*)([-*+•]|(\d{1,3})[.)])\s+(\S.*)$")


@dataclass
class _Item:
    indent: str
    number: int | None  # None for a bullet
    text: str

    def line(self) -> str:
        marker = "-" if self.number is None else f"{self.number}."
        return f"{self.indent}{marker} {self.text}"


@dataclass
class _Piece:
    """A sentence, or a list with its lead-in sentence (empty when it has none)."""

    position: int
    sentence: str = ""
    items: list[_Item] = field(default_factory=list)
    own: float = 0.0  # the share of the question's words in the piece itself
    relevance: float = 0.0  # the same, read with the passage's title and headings

    def units(self) -> list[str]:
        return ([self.sentence] if self.sentence else []) + [item.text for item in self.items]

    def render(self, unit_scores: Sequence[float]) -> str:
        if not self.items:
            return self.sentence
        items = _window(self.items, unit_scores[-len(self.items) :])
        lines = "\n".join(item.line() for item in items)
        return f"{self.sentence}\n\n{lines}" if self.sentence else lines


@dataclass
class _Scored:
    number: int  # the passage's number, as cited
    pieces: list[_Piece]
    unit_scores: list[list[float]]  # each piece's units' own scores
    terms: list[set[str]]  # each piece's words
    context: set[str]  # the words of the passage's title and headings
    score: float


def _window(items: list[_Item], scores: Sequence[float]) -> list[_Item]:
    """A long list's MAX_LIST_ITEMS consecutive items that hold most of the question."""
    if len(items) <= MAX_LIST_ITEMS:
        return items
    starts = range(len(items) - MAX_LIST_ITEMS + 1)
    best = max(starts, key=lambda start: (sum(scores[start : start + MAX_LIST_ITEMS]), -start))
    return items[best : best + MAX_LIST_ITEMS]


def _continues(items: list[_Item], item: _Item, *, after_blank: bool) -> bool:
    """Whether `item` belongs to the list `items`: nested deeper, or the same kind at
    the same depth (numbers counting on: a "1." after "3." starts another list)."""
    first = items[0]
    if len(item.indent) > len(first.indent):
        return True
    if len(item.indent) < len(first.indent) or (item.number is None) != (first.number is None):
        return False
    if item.number is None:
        return not after_blank or items[-1].number is None
    last = next((i.number for i in reversed(items) if i.indent == first.indent and i.number is not None), 0)
    return item.number in (last, last + 1)


def _read(text: str) -> list[_Piece]:
    """The passage as pieces in reading order (see the module's docstring)."""
    pieces: list[_Piece] = []
    paragraph: list[str] = []
    open_list: _Piece | None = None
    after_blank = False

    def end_paragraph() -> None:
        for sentence in split_sentences(" ".join(paragraph)):
            pieces.append(_Piece(position=len(pieces), sentence=sentence))
        paragraph.clear()

    for line in table_rows_as_sentences(text).split("\n"):
        if not line.strip():
            end_paragraph()
            after_blank = True
            continue
        match = _ITEM.match(line)
        if match:
            end_paragraph()
            number = match.group(3)
            item = _Item(match.group(1), int(number) if number else None, match.group(4).strip())
            if open_list is None or not _continues(open_list.items, item, after_blank=after_blank):
                # The sentence just before a list, ending in ":", says what the list is for.
                lead = ""
                if pieces and not pieces[-1].items and pieces[-1].sentence.endswith(":"):
                    lead = pieces.pop().sentence
                open_list = _Piece(position=len(pieces), sentence=lead)
                pieces.append(open_list)
            open_list.items.append(item)
        elif open_list is not None and line[:1].isspace() and open_list.items:
            open_list.items[-1].text += " " + line.strip()  # an item's wrapped or further lines
        else:
            open_list = None
            paragraph.append(line.strip().removeprefix(">").strip())
        after_blank = False
    end_paragraph()
    return pieces


def _weights(question_terms: set[str], units: list[set[str]]) -> dict[str, float]:
    """Each question word's weight: rarer among the passages' sentences, heavier."""
    count = len(units)
    return {term: 1.0 + math.log((count + 1) / (1 + sum(term in unit for unit in units))) for term in question_terms}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_rows_as_sentences(text: str) -> str:
    """Markdown table rows rewritten as `Header: value; ...` lines. Quoted alone, a
    table's header row says nothing and a data row loses what its numbers mean."""
    lines = text.split("\n")
    out: list[str] = []
    header: list[str] | None = None
    for index, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            header = None
            out.append(line)
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if header is None and set(following.strip()) <= set("|-: ") and following.strip().startswith("|"):
            header = _cells(line)  # the header row, followed by its separator
            continue
        if set(line.strip()) <= set("|-: "):
            continue  # the separator
        cells = _cells(line)
        if header and len(header) == len(cells):
            pairs = zip(header, cells, strict=True)
            out.append("; ".join(f"{name}: {value}" if name else value for name, value in pairs) + ".")
        else:
            out.append(" ".join(cells))
    return "\n".join(out)


def extractive_answer(question: str, passages: Sequence[Passage]) -> str:
    """The pieces of the passages that best answer `question` (up to MAX_SENTENCES, from
    up to MAX_PASSAGES passages), the best passage first, each in reading order and cited
    by its number; the best-ranked passage's opening when none shares the question's
    words; empty when there is nothing to quote."""
    read = [(number, passage, _read(passage.text)) for number, passage in enumerate(passages, start=1)]
    read = [(number, passage, pieces) for number, passage, pieces in read if pieces]
    if not read:
        return ""
    unit_terms = {
        (number, piece.position): [set(tokenize(unit)) for unit in piece.units()]
        for number, _, pieces in read
        for piece in pieces
    }
    weights = _weights(set(tokenize(question)), [terms for units in unit_terms.values() for terms in units])
    total = sum(weights.values())

    def share(terms: set[str]) -> float:
        return sum(weight for term, weight in weights.items() if term in terms) / total if total else 0.0

    scored: list[_Scored] = []
    for number, passage, pieces in read:
        context = set(tokenize(" ".join((passage.title, *passage.heading_path))))
        terms: list[set[str]] = []
        scores: list[list[float]] = []
        for piece in pieces:
            units = unit_terms[(number, piece.position)]
            terms.append(set().union(*units))
            scores.append([share(unit) for unit in units])
            piece.own = max(scores[-1])
            piece.relevance = 0.5 * piece.own + 0.5 * max(share(unit | context) for unit in units)
        best = max(piece.relevance for piece in pieces)
        # A section whose heading asks the question is the surest sign it answers it.
        fit = (best + share(context.union(*terms)) + share(context)) / 3
        scored.append(_Scored(number, pieces, scores, terms, context, fit / (1 + RANK_DECAY * (number - 1))))

    ranked = sorted(scored, key=lambda s: (-s.score, s.number))
    first = ranked[0]
    if first.score <= 0:
        first = scored[0]
        return f"{first.pieces[0].render(first.unit_scores[0])} [{first.number}]"
    by_relevance = sorted(first.pieces, key=lambda piece: (-piece.relevance, piece.position))
    top = by_relevance[0].relevance
    picked = {first.number: [piece for piece in by_relevance[:MAX_SENTENCES] if piece.relevance >= KEEP_SHARE * top]}
    covered = first.context.union(*(first.terms[piece.position] for piece in picked[first.number]))
    quoted = {" ".join(piece.units()).casefold() for piece in picked[first.number]}
    for other in ranked[1:MAX_PASSAGES]:
        if other.score < SECOND_PASSAGE_SHARE * first.score:
            break
        # Only what the best passage leaves unsaid: question words it does not hold.
        for piece in sorted(other.pieces, key=lambda piece: (-piece.relevance, piece.position)):
            words = other.terms[piece.position]
            text = " ".join(piece.units()).casefold()
            if sum(map(len, picked.values())) == MAX_SENTENCES or piece.relevance < KEEP_SHARE * top:
                break
            if piece.own > 0 and share(words - covered) > 0 and text not in quoted:
                picked.setdefault(other.number, []).append(piece)
                covered |= words
                quoted.add(text)
    blocks = []
    for s in ranked:
        if s.number in picked:
            blocks.append(f"{_join(s, sorted(picked[s.number], key=lambda piece: piece.position))} [{s.number}]")
    return "\n\n".join(blocks)


def _join(scored: _Scored, pieces: list[_Piece]) -> str:
    """Sentences run on as prose; a list stands apart, one item a line."""
    text = ""
    previous: _Piece | None = None
    for piece in pieces:
        rendered = piece.render(scored.unit_scores[piece.position])
        if previous is None:
            text = rendered
        elif piece.items or previous.items:
            text += "\n\n" + rendered
        else:
            text += " " + rendered
        previous = piece
    return text
