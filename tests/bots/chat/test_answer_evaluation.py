"""evaluate_answers: the figures from recorded replies (pure), and the command asking a
throwaway bot over a small corpus through the real reply path."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bots.chat.answer_evaluation import (
    AnswerRecord,
    Thresholds,
    answer_figures,
    answers,
    lowest_threshold_holding_back,
    threshold_sweep,
)
from bots.chat.replies import reply_to_question
from bots.models import Bot
from neo_support.models import Organization
from retrieval.evaluation import write_beir
from tests.factories import BotFactory, KnowledgeBaseFactory


def record(in_scope: bool, confidence: float, *, top: float | None = 0.6, right: bool | None = True) -> AnswerRecord:
    return AnswerRecord(in_scope=in_scope, blocked=False, top_score=top, confidence=confidence, cited_gold_first=right)


def test_a_reply_counts_as_an_answer_only_above_both_thresholds_and_citing_something() -> None:
    thresholds = Thresholds(answer=0.5, handoff=0.3)
    assert answers(record(True, 0.6), thresholds)
    assert not answers(record(True, 0.4), thresholds)  # offers a person instead
    assert not answers(record(True, 0.9, top=0.2), thresholds)  # nothing found
    assert not answers(record(True, 0.9, right=None), thresholds)  # cites nothing
    assert not answers(AnswerRecord(True, True, 0.9, 0.9, True), thresholds)  # blocked


def test_figures_separate_questions_in_scope_from_the_rest() -> None:
    records = [
        record(True, 0.9),
        record(True, 0.8, right=False),
        record(True, 0.3),
        record(True, 0.7),
        record(False, 0.6, right=False),
        record(False, 0.2, right=False),
    ]
    figures = answer_figures(records, Thresholds(answer=0.5, handoff=0.25))
    assert (figures.in_scope, figures.out_of_scope) == (4, 2)
    assert figures.answered == 0.75 and figures.abstained_in_scope == 0.25
    assert figures.answer_precision == pytest.approx(2 / 3)
    assert figures.abstained_out_of_scope == 0.5
    assert "answer_precision=0.667" in figures.tokens() and "abstained_out_of_scope=0.500" in figures.tokens()


def test_the_suggested_threshold_is_the_lowest_that_holds_back_ninety_percent_out_of_scope() -> None:
    outside = [record(False, c / 100, right=False) for c in range(40, 80, 4)]  # 0.40 .. 0.76
    inside = [record(True, 0.85)] * 10
    sweep = threshold_sweep(inside + outside, [0.5, 0.6, 0.7, 0.75, 0.8], handoff=0.25)
    assert lowest_threshold_holding_back(sweep) == 0.75
    assert lowest_threshold_holding_back(threshold_sweep(inside, [0.5], handoff=0.25)) is None


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    beir = tmp_path / "beir"
    rows = {
        "d1": ("How do I strike through text in Markdown?", "Wrap the words in two tildes on each side."),
        "d2": ("How do I delete my account?", "Open settings, choose delete account and confirm by email."),
        "d3": ("How long do I cook rice?", "Rinse the rice, then simmer it covered for eighteen minutes."),
    }
    queries = {"q1": "cross out words in markdown", "q2": "remove my account", "q3": "rice cooking time"}
    write_beir(beir, rows, queries, [("q1", "d1"), ("q2", "d2"), ("q3", "d3")])
    (tmp_path / "elsewhere.txt").write_text("What is the capital of Peru?\n\nWhich planet has the most moons?\n")
    return beir


@pytest.mark.django_db
def test_the_command_asks_the_real_reply_path_and_leaves_nothing_behind(corpus: Path, settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    out = StringIO()
    call_command(
        "evaluate_answers",
        "--beir",
        str(corpus),
        "--out-of-scope",
        str(tmp_path / "elsewhere.txt"),
        "--bot-settings",
        '{"answer_mode": "extractive"}',
        stdout=out,
        stderr=StringIO(),
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("answer_threshold=0.65 handoff_threshold=0.25 in_scope=3 ")  # a new bot's
    assert "out_of_scope=2" in lines[0] and "modes=extractive:5" in lines[0]
    assert "answer_precision=1.000" in lines[0]  # each answered question cites its own entry first
    assert sum(line.startswith("sweep answer_threshold=") for line in lines) == 11
    assert lines[-1].startswith("suggested_answer_threshold=")
    assert not Bot.objects.exists() and not Organization.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--bot-settings", "{"], "--bot-settings is not JSON"),
        (["--bot-settings", "[]"], "must be a JSON object"),
        (["--bot-settings", '{"colour": "red"}'], "unknown colour"),
        (["--bot-settings", '{"answer_mode": "psychic"}'], "answer_mode must be one of"),
        (["--bot-settings", '{"answer_threshold": 2}'], "answer_threshold must be a number from 0 to 1"),
        (["--bot-settings", '{"answer_threshold": 0.2, "handoff_threshold": 0.4}'], "cannot be above"),
        (["--out-of-scope", "/no/such/file"], "/no/such/file"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_input_is_refused_with_a_message(corpus: Path, arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("evaluate_answers", "--beir", str(corpus), *arguments, stdout=StringIO(), stderr=StringIO())
    assert not Organization.objects.exists()


@pytest.mark.django_db
def test_an_unreadable_index_is_answered_as_no_passages_not_raised(settings, tmp_path, caplog) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    knowledge_base = KnowledgeBaseFactory(index_version=3)  # the database says v3; no host has its files
    bot = BotFactory(organization=knowledge_base.organization, answer_mode="extractive")
    bot.knowledge_bases.add(knowledge_base)
    outcome = reply_to_question(bot=bot, question="How do I delete my account?")
    assert not outcome.cited and outcome.confidence == 0.0
    assert outcome.handoff or outcome.text  # it says it does not know, or hands over
