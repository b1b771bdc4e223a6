"""Extractive answers: the sentences of the best passages that answer the question,
quoted and cited. Used when a bot asks for it or no generation model is loaded.
Pure Python."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.chunking import split_sentences
from retrieval.lexical import tokenize
from workers.generation.prompt import Passage

MAX_SENTENCES = 3
MAX_PASSAGES = 2


def _overlap(sentence: str, question_terms: set[str]) -> float:
    terms = set(tokenize(sentence))
    return len(terms & question_terms) / (len(question_terms) or 1)


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
    """Up to three sentences from the two best passages, in reading order, each passage
    cited by its number; empty when there is nothing to quote."""
    if not passages:
        return ""
    question_terms = set(tokenize(question))
    picked: list[tuple[float, int, int, str]] = []  # (score, passage number, position, sentence)
    for number, passage in enumerate(passages[:MAX_PASSAGES], start=1):
        rank_weight = 1.0 if number == 1 else 0.6
        for position, sentence in enumerate(split_sentences(table_rows_as_sentences(passage.text))):
            overlap = _overlap(sentence, question_terms)
            # Earlier sentences break ties: a passage usually leads with its point.
            picked.append((rank_weight * (overlap + 0.01 / (1 + position)), number, position, sentence))
    if not picked:
        return ""
    ranked = sorted(picked, reverse=True)
    top_score = ranked[0][0] if ranked else 0.0
    # Sentences that share the question's words, and hold their own against the best one;
    # when none shares any, the best passage's opening sentence.
    best = [item for item in ranked[:MAX_SENTENCES] if item[0] >= 0.5 * top_score and item[0] > 0.02]
    best = best or [min((item for item in picked if item[1] == 1), key=lambda item: item[2])]
    lines: list[str] = []
    for number in sorted({item[1] for item in best}):
        sentences = [item[3] for item in sorted(best, key=lambda item: item[2]) if item[1] == number]
        lines.append(f"{' '.join(sentences)} [{number}]")
    return "\n\n".join(lines)
