"""Figures for how a bot answers: how often it answers, how often its answer cites the
right document first, and how often it holds back, on questions it should answer (in
scope) and questions from elsewhere (out of scope). Pure Python: the records come from
`manage.py evaluate_answers`, which asks the real reply path.

Replies are recorded once with both thresholds at zero; a bot's thresholds are then
applied here exactly as the reply path applies them (a top passage under the handoff
threshold means nothing found; a confidence under the answer threshold means the bot
offers a person instead), so one run gives the figures at every threshold."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

OUT_OF_SCOPE_GOAL = 0.90  # share of out-of-scope questions a default bot holds back on


@dataclass(frozen=True)
class AnswerRecord:
    in_scope: bool
    blocked: bool  # moderation stopped the question or the answer
    top_score: float | None  # the best passage's cosine (None: nothing found)
    confidence: float
    cited_gold_first: bool | None  # None when the answer cites nothing


@dataclass(frozen=True)
class Thresholds:
    answer: float
    handoff: float


@dataclass(frozen=True)
class AnswerFigures:
    in_scope: int
    out_of_scope: int
    answered: float  # of in-scope questions
    answer_precision: float  # of those answered, the share citing a gold document first
    abstained_in_scope: float
    abstained_out_of_scope: float | None  # None without out-of-scope questions

    def tokens(self) -> str:
        parts = [
            f"in_scope={self.in_scope}",
            f"answered={self.answered:.3f}",
            f"answer_precision={self.answer_precision:.3f}",
            f"abstained_in_scope={self.abstained_in_scope:.3f}",
        ]
        if self.abstained_out_of_scope is not None:
            parts += [f"out_of_scope={self.out_of_scope}", f"abstained_out_of_scope={self.abstained_out_of_scope:.3f}"]
        return " ".join(parts)


def answers(record: AnswerRecord, thresholds: Thresholds) -> bool:
    """Whether the bot answers (rather than saying it found nothing, offering a person,
    or refusing), under `thresholds`."""
    return (
        not record.blocked
        and record.top_score is not None
        and record.top_score >= thresholds.handoff
        and record.cited_gold_first is not None
        and record.confidence >= thresholds.answer
    )


def answer_figures(records: Sequence[AnswerRecord], thresholds: Thresholds) -> AnswerFigures:
    inside = [r for r in records if r.in_scope]
    outside = [r for r in records if not r.in_scope]
    answered = [r for r in inside if answers(r, thresholds)]
    held_back_outside = sum(not answers(r, thresholds) for r in outside)
    return AnswerFigures(
        in_scope=len(inside),
        out_of_scope=len(outside),
        answered=len(answered) / len(inside) if inside else 0.0,
        answer_precision=sum(bool(r.cited_gold_first) for r in answered) / len(answered) if answered else 0.0,
        abstained_in_scope=1 - len(answered) / len(inside) if inside else 0.0,
        abstained_out_of_scope=held_back_outside / len(outside) if outside else None,
    )


def threshold_sweep(
    records: Sequence[AnswerRecord], answer_thresholds: Iterable[float], *, handoff: float
) -> list[tuple[float, AnswerFigures]]:
    """The figures at each answer threshold (at least `handoff`, as bots require)."""
    return [
        (threshold, answer_figures(records, Thresholds(answer=threshold, handoff=min(handoff, threshold))))
        for threshold in answer_thresholds
    ]


def lowest_threshold_holding_back(
    sweep: Sequence[tuple[float, AnswerFigures]], goal: float = OUT_OF_SCOPE_GOAL
) -> float | None:
    """The lowest answer threshold at which out-of-scope questions are held back at least
    `goal` of the time (answering as much in scope as that allows); None if none does."""
    for threshold, figures in sorted(sweep, key=lambda pair: pair[0]):
        if figures.abstained_out_of_scope is not None and figures.abstained_out_of_scope >= goal:
            return threshold
    return None
