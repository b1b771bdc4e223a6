from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from bots.chat.answer_evaluation import (
    OUT_OF_SCOPE_GOAL,
    AnswerRecord,
    Thresholds,
    answer_figures,
    lowest_threshold_holding_back,
    threshold_sweep,
)
from bots.chat.replies import reply_to_question
from bots.models import AnswerMode, Bot
from neo_support.management.bulk import BulkCommand
from retrieval.evaluation import DatasetError, load_beir
from retrieval.management.commands.evaluate_retrieval import temporary_knowledge_base
from workers.generation.answer import ReplyOutcome

# What --bot-settings may set on the throwaway bot.
SETTABLE = {"answer_mode", "answer_threshold", "handoff_threshold", "instructions", "moderation_policy", "generation"}
SWEEP = [round(0.30 + 0.05 * step, 2) for step in range(11)]  # answer thresholds 0.30 .. 0.80


def read_out_of_scope(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CommandError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text") from None
    questions = [line.strip() for line in lines if line.strip()]
    if not questions:
        raise CommandError(f"{path}: no questions (one per line)")
    return questions


def read_bot_settings(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--bot-settings is not JSON: {error.msg}") from None
    if not isinstance(values, dict):
        raise CommandError("--bot-settings must be a JSON object")
    unknown = sorted(set(values) - SETTABLE)
    if unknown:
        raise CommandError(f"--bot-settings: unknown {', '.join(unknown)}; settable: {', '.join(sorted(SETTABLE))}")
    if "answer_mode" in values and values["answer_mode"] not in AnswerMode.values:
        raise CommandError(f"--bot-settings: answer_mode must be one of {', '.join(AnswerMode.values)}")
    for name in ("answer_threshold", "handoff_threshold"):
        value = values.get(name)
        if value is not None and (not isinstance(value, int | float) or not 0 <= value <= 1):
            raise CommandError(f"--bot-settings: {name} must be a number from 0 to 1")
    return values


def top_score(outcome: ReplyOutcome) -> float | None:
    """The score the reply path compares with the handoff threshold."""
    hits = outcome.hits
    return next((h.dense_score for h in hits if h.dense_score is not None), hits[0].score if hits else None)


def record_of(outcome: ReplyOutcome, *, gold: set[str] | None, corpus_ids: dict[int, str]) -> AnswerRecord:
    """`gold`: the corpus ids that answer an in-scope question; None for out of scope."""
    cited = outcome.cited
    first = corpus_ids.get(cited[0][1].document_id) if cited else None
    return AnswerRecord(
        in_scope=gold is not None,
        blocked=outcome.blocked or outcome.mode == "blocked_input",
        top_score=top_score(outcome),
        confidence=outcome.confidence,
        cited_gold_first=(first in gold if gold is not None else False) if cited else None,
    )


class Command(BulkCommand):
    help = (
        "Ask a throwaway bot over a BEIR corpus every judged question (and, with --out-of-scope, questions from "
        "elsewhere) through the real reply path; print how often it answers, how often its answer cites a right "
        "document first, and how often it holds back, with a sweep of answer thresholds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--beir", type=Path, required=True, help="BEIR folder: corpus, queries, qrels/test.tsv.")
        parser.add_argument("--out-of-scope", type=Path, help="Questions the corpus cannot answer, one per line.")
        parser.add_argument("--bot-settings", help='JSON for the bot, e.g. {"answer_threshold": 0.6}.')
        parser.add_argument("--limit", type=int, help="Ask only the first N judged (and N out-of-scope) questions.")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        values = read_bot_settings(options["bot_settings"])
        outside = read_out_of_scope(options["out_of_scope"]) if options["out_of_scope"] else []
        try:
            dataset = load_beir(options["beir"])
        except DatasetError as error:
            raise CommandError(str(error)) from None
        judged = list(dataset.relevant.items())[:limit]
        outside = outside[:limit]
        defaults = Bot()
        thresholds = Thresholds(
            answer=float(values.get("answer_threshold", defaults.answer_threshold)),
            handoff=float(values.get("handoff_threshold", defaults.handoff_threshold)),
        )
        if thresholds.handoff > thresholds.answer:
            raise CommandError("--bot-settings: handoff_threshold cannot be above answer_threshold")
        records: list[AnswerRecord] = []
        modes: Counter[str] = Counter()
        with temporary_knowledge_base(dataset, self.stderr) as (knowledge_base, corpus_ids):
            fields = {name: value for name, value in values.items() if not name.endswith("_threshold")}
            # Thresholds at zero: every reply is recorded in full, and each threshold applied afterwards.
            bot = Bot.objects.create(
                organization=knowledge_base.organization,
                name="Answer evaluation",
                answer_threshold=0.0,
                handoff_threshold=0.0,
                **fields,
            )
            bot.knowledge_bases.add(knowledge_base)
            questions: list[tuple[str, set[str] | None]] = [(dataset.queries[q], set(gold)) for q, gold in judged]
            questions += [(question, None) for question in outside]
            with tqdm(total=len(questions), unit="question", desc="ask", file=self.stderr) as bar:
                for question, gold in questions:
                    outcome = reply_to_question(bot=bot, question=question)
                    modes[outcome.mode] += 1
                    records.append(record_of(outcome, gold=gold, corpus_ids=corpus_ids))
                    bar.update(1)
        figures = answer_figures(records, thresholds)
        mode_counts = ",".join(f"{mode}:{count}" for mode, count in sorted(modes.items()))
        self.stdout.write(
            f"answer_threshold={thresholds.answer:.2f} handoff_threshold={thresholds.handoff:.2f} "
            f"{figures.tokens()} modes={mode_counts}"
        )
        sweep = threshold_sweep(records, SWEEP, handoff=thresholds.handoff)
        for threshold, at in sweep:
            self.stdout.write(f"sweep answer_threshold={threshold:.2f} {at.tokens()}")
        if outside:
            suggested = lowest_threshold_holding_back(sweep)
            if suggested is None:
                goal = OUT_OF_SCOPE_GOAL
                self.stdout.write(f"suggested_answer_threshold=none (none swept holds back {goal} out of scope)")
            else:
                self.stdout.write(f"suggested_answer_threshold={suggested:.2f}")
