"""The analytics selectors (bots/analytics.py) and page (bots/analytics_views.py)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from bots.analytics.metrics import article_draft, moderation_pairs, normalise_question, percentile
from bots.analytics.selectors import (
    AnalyticsFilter,
    analytics_clusters,
    analytics_csv_rows,
    analytics_summary,
    low_confidence_questions,
)
from bots.models import Bot, Conversation, Feedback, Message, ModelVersion
from neo_support.models import Organization
from tests.factories import (
    BotFactory,
    ConversationFactory,
    FeedbackFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
    TicketFactory,
)

SINCE, UNTIL = date(2026, 3, 1), date(2026, 3, 3)
RANGE = {"since": "2026-03-01", "until": "2026-03-03"}


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.get_current_timezone())


def conversation(bot: Bot, day: date, **fields: Any) -> Conversation:
    made = ConversationFactory(bot=bot, **fields)
    Conversation.objects.filter(pk=made.pk).update(created_at=at(day))
    return made


def message(talk: Conversation, role: str, text: str, day: date, **fields: Any) -> Message:
    made = MessageFactory(conversation=talk, role=role, text=text, **fields)
    Message.objects.filter(pk=made.pk).update(created_at=at(day, 13))
    return made


def thumbs(answer: Message, rating: int, day: date) -> Feedback:
    made = FeedbackFactory(message=answer, rating=rating)
    Feedback.objects.filter(pk=made.pk).update(created_at=at(day, 14))
    return made


def verdict(*findings: tuple[str, str]) -> dict[str, Any]:
    return {
        "action": findings[0][1] if findings else "allow",
        "findings": [{"filter": f, "action": a, "reason": "test", "span": [0, 1]} for f, a in findings],
    }


def day(n: int) -> date:
    return SINCE + timedelta(days=n - 1)


@pytest.fixture
def shop(db: None) -> dict[str, Any]:
    """Bot A's three days of traffic, a second bot of the same organization, and data that
    must never count: a day before the range and another organization."""
    organization = OrganizationFactory()
    bot = BotFactory(organization=organization, answer_threshold=0.5, handoff_threshold=0.2)
    second = BotFactory(organization=organization)

    # Day 1: a deflected chat (resolved by the bot), a handed-off one, one with no question.
    c1 = conversation(bot, day(1), status="resolved")
    message(c1, "visitor", "How do I get a refund?", day(1))
    a1 = message(c1, "bot", "Five days.", day(1), confidence=0.9, timings={"first_token_ms": 100, "total_ms": 1000})
    thumbs(a1, 1, day(1))
    c2 = conversation(bot, day(1), status="pending_agent")
    message(c2, "visitor", "How can I get my money back?", day(1))
    a2 = message(c2, "bot", "Not sure.", day(1), confidence=0.2, timings={"first_token_ms": 200, "total_ms": 2000})
    thumbs(a2, -1, day(1))
    TicketFactory(conversation=c2)
    conversation(bot, day(1))

    # Day 2: an agent stepped in; a failed answer; a moderated, deflected chat.
    c4 = conversation(bot, day(2), status="agent")
    message(c4, "visitor", "how do i get a refund", day(2))
    a4 = message(c4, "bot", "Hmm.", day(2), confidence=0.3, timings={"first_token_ms": 300, "total_ms": 3000})
    thumbs(a4, 1, day(2))
    message(c4, "agent", "I will refund you now.", day(2))
    c5 = conversation(bot, day(2))
    message(c5, "visitor", "I forgot my password", day(2))
    message(c5, "bot", "", day(2), status="failed", confidence=None)
    c6 = conversation(bot, day(2))
    message(c6, "visitor", "Reset my password, me@example.com", day(2), moderation=[verdict(("pii", "redact"))],
            moderation_action="redact")  # fmt: skip
    message(c6, "bot", "Use the reset link.", day(2), confidence=0.8, model_version="v1", prompt_tokens=300,
            completion_tokens=20, timings={"first_token_ms": 400, "total_ms": 4000, "generation_ms": 3500,
                                           "device": "cuda"},
            moderation=[verdict(("grounding", "flag"), ("pii", "redact"), ("pii", "redact")), verdict()],
            moderation_action="flag")  # fmt: skip

    # Day 3: a blocked answer.
    c7 = conversation(bot, day(3))
    message(c7, "visitor", "Can't log in, my password does not work", day(3), moderation=[verdict()],
            moderation_action="allow")  # fmt: skip
    message(c7, "bot", "", day(3), status="blocked", confidence=None, moderation=[verdict(("toxicity", "block"))],
            moderation_action="block")  # fmt: skip

    # The second bot: a low-confidence answer nobody followed up (deflected by the definition).
    c10 = conversation(second, day(2))
    message(c10, "visitor", "Do you ship to Canada?", day(2))
    message(c10, "bot", "Maybe.", day(2), confidence=0.1, timings={"mode": "extractive"})

    # The dashboard's test chat: an admin trying the bot, left out unless asked for.
    trial = conversation(bot, day(1), is_test=True)
    message(trial, "visitor", "How do I get a refund?", day(1), moderation=[verdict(("pii", "redact"))],
            moderation_action="redact")  # fmt: skip
    tried = message(trial, "bot", "Not sure.", day(1), confidence=0.1, timings={"first_token_ms": 50, "total_ms": 500})
    thumbs(tried, -1, day(1))

    # Outside: the day before, and another organization on a day inside the range.
    before = conversation(bot, SINCE - timedelta(days=1))
    message(before, "visitor", "How do I get a refund?", SINCE - timedelta(days=1))
    thumbs(
        message(before, "bot", "Five days.", SINCE - timedelta(days=1), confidence=0.9), -1, SINCE - timedelta(days=1)
    )
    stranger = BotFactory()
    theirs = conversation(stranger, day(2))
    message(theirs, "visitor", "How do I get a refund?", day(2), moderation=[verdict(("pii", "block"))],
            moderation_action="block")  # fmt: skip
    thumbs(
        message(theirs, "bot", "x", day(2), confidence=0.1, timings={"first_token_ms": 9, "total_ms": 9}), -1, day(2)
    )
    return {"organization": organization, "bot": bot, "second": second, "stranger": stranger}


def bot_a(shop: dict[str, Any], *, include_test: bool = False) -> AnalyticsFilter:
    return AnalyticsFilter(
        organization=shop["organization"], since=SINCE, until=UNTIL, bot=shop["bot"], include_test=include_test
    )


def test_the_summary_counts_one_bots_figures_exactly(shop) -> None:
    summary = analytics_summary(bot_a(shop), with_clusters=False)

    assert summary["totals"] == {
        "conversations": 7,
        "engaged_conversations": 6,
        "deflected": 2,
        "handed_off": 2,
        "visitor_messages": 6,
        "bot_answers": 4,
        "low_confidence_answers": 4,
        "moderated_messages": 3,
        "thumbs_up": 2,
        "thumbs_down": 1,
    }
    assert summary["rates"] == {"deflection": 0.3333, "handoff": 0.3333, "csat": 0.6667}
    assert summary["latency"] == {
        "first_token_ms": {"p50": 250.0, "p95": 385.0, "count": 4},
        "total_ms": {"p50": 2500.0, "p95": 3850.0, "count": 4},
    }
    assert summary["filter"] == {
        "since": "2026-03-01",
        "until": "2026-03-03",
        "bot": shop["bot"].pk,
        "include_test": False,
    }


def test_test_chats_count_only_when_included(shop) -> None:
    """Issue "The first hour of a new company", item 8: the dashboard's test chats counted
    as visitors' conversations (deflection, top questions)."""
    left_out = analytics_summary(bot_a(shop), with_clusters=False)
    included = analytics_summary(bot_a(shop, include_test=True), with_clusters=False)

    assert left_out["totals"]["conversations"] == 7
    assert left_out["top_questions"][0]["count"] == 2
    assert included["filter"]["include_test"] is True
    assert included["totals"] == {
        "conversations": 8,
        "engaged_conversations": 7,
        "deflected": 3,
        "handed_off": 2,
        "visitor_messages": 7,
        "bot_answers": 5,
        "low_confidence_answers": 5,
        "moderated_messages": 4,
        "thumbs_up": 2,
        "thumbs_down": 2,
    }
    assert included["rates"]["deflection"] == 0.4286
    assert included["latency"]["first_token_ms"]["count"] == 5
    assert included["top_questions"][0] == {
        "question": "how do i get a refund",
        "normalised": "how do i get a refund",
        "count": 3,
    }
    assert included["moderation"][0] == {"filter": "pii", "total": 3, "actions": {"redact": 3}}
    assert sum(row["answers"] for row in included["compute"]["answers"]) == 5
    assert len(low_confidence_questions(bot_a(shop))) == 4  # the learning loop's questions
    assert len(low_confidence_questions(bot_a(shop, include_test=True))) == 5
    assert analytics_csv_rows(bot_a(shop))[1][1] == 3  # conversations on day 1
    assert analytics_csv_rows(bot_a(shop, include_test=True))[1][1] == 4


def test_compute_per_answer_and_per_resolved_conversation_by_bot_and_model_version(shop) -> None:
    run = ModelVersion.objects.create(
        bot=shop["bot"], number=1, base_model="x", status="ready",
        compute={"seconds": 812.5, "tokens": 1_200_000, "device": "cuda"},
    )  # fmt: skip
    ModelVersion.objects.filter(pk=run.pk).update(created_at=at(day(2), 9))
    compute = analytics_summary(bot_a(shop), with_clusters=False)["compute"]
    quoted, tuned = compute["answers"]
    assert (quoted["model_version"], quoted["answers"], quoted["compute_seconds"]) == ("quoted", 3, 6.0)
    assert (quoted["resolved_conversations"], quoted["seconds_per_answer"], quoted["seconds_per_resolved"]) == (
        1,
        2.0,
        6.0,
    )
    assert tuned == {
        "bot": shop["bot"].pk, "bot_name": shop["bot"].name, "model_version": "v1", "answers": 1, "tokens": 320,
        "compute_seconds": 4.0, "generation_seconds": 3.5, "devices": ["cuda"], "resolved_conversations": 0,
        "seconds_per_answer": 4.0, "seconds_per_resolved": None,
    }  # fmt: skip
    assert compute["training"] == [
        {"bot": shop["bot"].pk, "bot_name": shop["bot"].name, "model_version": "v1", "status": "ready",
         "seconds": 812.5, "tokens": 1_200_000, "device": "cuda"}
    ]  # fmt: skip
    everyone = analytics_summary(
        AnalyticsFilter(organization=shop["organization"], since=SINCE, until=UNTIL), with_clusters=False
    )["compute"]
    assert {row["bot"] for row in everyone["answers"]} == {shop["bot"].pk, shop["second"].pk}


def test_the_daily_series_has_every_day_of_the_range(shop) -> None:
    daily = analytics_summary(bot_a(shop), with_clusters=False)["daily"]

    picked = [
        {
            key: row[key]
            for key in ("date", "conversations", "visitor_messages", "handed_off", "thumbs_up", "thumbs_down")
        }
        for row in daily
    ]
    assert picked == [
        {"date": "2026-03-01", "conversations": 3, "visitor_messages": 2, "handed_off": 1, "thumbs_up": 1,
         "thumbs_down": 1},
        {"date": "2026-03-02", "conversations": 3, "visitor_messages": 3, "handed_off": 1, "thumbs_up": 1,
         "thumbs_down": 0},
        {"date": "2026-03-03", "conversations": 1, "visitor_messages": 1, "handed_off": 0, "thumbs_up": 0,
         "thumbs_down": 0},
    ]  # fmt: skip
    assert [row["low_confidence_answers"] for row in daily] == [1, 2, 1]
    assert [row["first_token_p50_ms"] for row in daily] == [150.0, 350.0, None]


def test_moderation_counts_each_message_once_per_filter_and_action(shop) -> None:
    moderation = analytics_summary(bot_a(shop), with_clusters=False)["moderation"]

    assert moderation == [
        {"filter": "pii", "total": 2, "actions": {"redact": 2}},
        {"filter": "grounding", "total": 1, "actions": {"flag": 1}},
        {"filter": "toxicity", "total": 1, "actions": {"block": 1}},
    ]


def test_top_questions_are_compared_normalised(shop) -> None:
    top = analytics_summary(bot_a(shop), with_clusters=False)["top_questions"]

    assert top[0] == {"question": "how do i get a refund", "normalised": "how do i get a refund", "count": 2}
    assert sorted(row["count"] for row in top) == [1, 1, 1, 1, 2]


def test_all_bots_include_the_second_bot_and_nothing_from_another_organization(shop) -> None:
    chosen = AnalyticsFilter(organization=shop["organization"], since=SINCE, until=UNTIL)
    summary = analytics_summary(chosen, with_clusters=False)

    assert summary["totals"]["conversations"] == 8
    assert summary["totals"]["engaged_conversations"] == 7
    assert summary["totals"]["deflected"] == 3
    assert summary["totals"]["thumbs_down"] == 1
    assert summary["latency"]["first_token_ms"]["count"] == 4
    assert [row["filter"] for row in summary["moderation"]] == ["pii", "grounding", "toxicity"]
    assert summary["moderation"][0]["actions"] == {"redact": 2}


def test_the_date_range_is_inclusive_and_leaves_out_other_days(shop) -> None:
    one_day = AnalyticsFilter(organization=shop["organization"], since=day(2), until=day(2), bot=shop["bot"])
    summary = analytics_summary(one_day, with_clusters=False)

    assert summary["totals"]["conversations"] == 3
    assert summary["totals"]["thumbs_up"] == 1
    assert [row["date"] for row in summary["daily"]] == ["2026-03-02"]
    earlier = AnalyticsFilter(organization=shop["organization"], since=SINCE - timedelta(days=1), until=UNTIL)
    assert analytics_summary(earlier, with_clusters=False)["totals"]["conversations"] == 9


def test_a_filter_refuses_another_organizations_bot(shop) -> None:
    with pytest.raises(ValueError):
        AnalyticsFilter(organization=shop["organization"], since=SINCE, until=UNTIL, bot=shop["stranger"])


def test_the_csv_has_one_row_per_day(shop) -> None:
    rows = analytics_csv_rows(bot_a(shop))

    assert rows[0][:5] == ["date", "conversations", "engaged_conversations", "deflected", "handed_off"]
    assert [row[0] for row in rows[1:]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert rows[1][1:5] == [3, 2, 1, 1]
    assert rows[3][-4:] == ["", "", "", ""]  # no latency on day 3


# The learning loop


def test_clusters_put_paraphrases_together_and_other_topics_apart(db: None) -> None:
    organization = OrganizationFactory()
    bot = BotFactory(organization=organization, answer_threshold=0.5, handoff_threshold=0.2)
    knowledge_base = KnowledgeBaseFactory(organization=organization, name="Help centre")
    bot.knowledge_bases.add(knowledge_base)
    questions = [
        "How do I get a refund?",
        "Can I have my money back?",
        "I want a refund for my order",
        "how do i get a refund",  # the same question again: counted, not shown twice
        "How do I reset my password?",
        "I forgot my password",
        "Do you ship to Canada?",
    ]
    for text in questions:
        talk = conversation(bot, day(1))
        message(talk, "visitor", text, day(1))
        message(talk, "bot", "Not sure.", day(1), confidence=0.1)
    answered = conversation(bot, day(1))
    message(answered, "visitor", "What are your opening hours?", day(1))
    message(answered, "bot", "Nine to five.", day(1), confidence=0.9)

    clusters = analytics_clusters(AnalyticsFilter(organization=organization, since=SINCE, until=UNTIL))

    topics = [sorted(normalise_question(q) for q in cluster["questions"]) for cluster in clusters]
    assert topics == [
        ["can i have my money back", "how do i get a refund", "i want a refund for my order"],
        ["how do i reset my password", "i forgot my password"],
        ["do you ship to canada"],
    ]
    assert [cluster["size"] for cluster in clusters] == [4, 2, 1]
    assert "refund" in clusters[0]["terms"]
    assert "password" in clusters[1]["terms"]
    assert clusters[0]["knowledge_base_id"] == knowledge_base.pk
    assert "## Can I have my money back?\n\nAnswer: \n" in clusters[0]["draft_text"]


def test_an_article_draft_lists_each_question_with_an_answer_line() -> None:
    title, text = article_draft(questions=["how do I pay?", "Can I pay by card?"], terms=["pay", "card"])

    assert title == "How do I pay?"
    assert text == (
        "# How do I pay?\n\nVisitors asked about: pay, card.\n\n"
        "## how do I pay?\n\nAnswer: \n\n## Can I pay by card?\n\nAnswer: \n"
    )


def test_pure_helpers() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert normalise_question("  How do   I pay?! ") == "how do i pay"
    assert moderation_pairs([verdict(("pii", "redact"), ("pii", "allow")), "junk", {"findings": None}]) == {
        ("pii", "redact")
    }


# The page


@pytest.fixture
def viewer_client(client, shop):
    membership = MembershipFactory(organization=shop["organization"], role="viewer")
    client.force_login(membership.user)
    return client


def test_a_viewer_reads_the_page_with_local_charts_and_text_figures(viewer_client, shop) -> None:
    response = viewer_client.get("/dashboard/analytics/", {**RANGE, "bot": shop["bot"].pk})

    assert response.status_code == 200
    page = response.content.decode()
    assert "33.3 %" in page and "66.7 %" in page  # deflection and handoff, CSAT
    assert 'id="analytics-data"' in page
    assert "/static/vendor/chart.umd.min.js" in page and "/static/bots/analytics.js" in page
    # Every script and stylesheet is served from here (not a CDN). Looking for "cdn" in the
    # page failed whenever the random CSRF token happened to contain those letters.
    assets = re.findall(r'<script[^>]*\bsrc="([^"]*)"|<link[^>]*\bhref="([^"]*)"', page)
    assert assets and not [url for pair in assets for url in pair if url.startswith(("http:", "https:", "//"))]
    assert "how do i get a refund" in page  # top questions
    assert "Draft an article" not in page  # viewers cannot add documents
    assert response.context["summary"]["totals"]["conversations"] == 7


def test_the_page_defaults_to_the_last_30_days(viewer_client) -> None:
    summary = viewer_client.get("/dashboard/analytics/").context["summary"]

    today = timezone.localdate()
    assert summary["filter"]["until"] == today.isoformat()
    assert summary["filter"]["since"] == (today - timedelta(days=29)).isoformat()
    assert len(summary["daily"]) == 30


def test_invalid_dates_show_errors_and_keep_the_values(viewer_client) -> None:
    response = viewer_client.get("/dashboard/analytics/", {"since": "2026-13-45", "until": "2026-03-03"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter a valid date." in page
    assert 'value="2026-13-45"' in page
    backwards = viewer_client.get("/dashboard/analytics/", {"since": "2026-03-03", "until": "2026-03-01"})
    assert backwards.status_code == 400
    assert "The end date is before the start date." in backwards.content.decode()


def test_another_organizations_bot_is_rejected_never_shown(viewer_client, shop) -> None:
    response = viewer_client.get("/dashboard/analytics/", {**RANGE, "bot": shop["stranger"].pk})

    assert response.status_code == 400
    assert response.context["summary"] is None
    assert "Select a valid choice" in response.content.decode()
    export = viewer_client.get("/dashboard/analytics/export.csv", {**RANGE, "bot": shop["stranger"].pk})
    assert export.status_code == 400


def test_the_csv_export_downloads_the_daily_figures(viewer_client, shop) -> None:
    response = viewer_client.get("/dashboard/analytics/export.csv", {**RANGE, "bot": shop["bot"].pk})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="analytics-2026-03-01-2026-03-03.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "date" and len(rows) == 4
    assert rows[2][:5] == ["2026-03-02", "3", "3", "1", "1"]


def test_the_page_and_its_export_include_test_chats_only_when_ticked(viewer_client, shop) -> None:
    query = {**RANGE, "bot": shop["bot"].pk}
    default = viewer_client.get("/dashboard/analytics/", query)
    ticked = viewer_client.get("/dashboard/analytics/", {**query, "include_test": "on"})

    assert default.context["summary"]["totals"]["conversations"] == 7
    assert ticked.context["summary"]["totals"]["conversations"] == 8
    assert "Include test chats" in default.content.decode()
    assert not re.search(r'<input[^>]*name="include_test"[^>]*checked', default.content.decode())
    assert re.search(r'<input[^>]*name="include_test"[^>]*checked', ticked.content.decode())
    # The export link keeps the choice, and the export counts the same conversations.
    assert "include_test" not in parse_qs(urlparse(default.context["export_url"]).query)
    export_url = ticked.context["export_url"]
    assert parse_qs(urlparse(export_url).query)["include_test"] == ["on"]
    exported = list(csv.reader(io.StringIO(viewer_client.get(export_url).content.decode())))
    assert exported[1][:2] == ["2026-03-01", "4"]
    plain = viewer_client.get("/dashboard/analytics/export.csv", query)
    assert list(csv.reader(io.StringIO(plain.content.decode())))[1][:2] == ["2026-03-01", "3"]


def test_the_api_includes_test_chats_only_with_include_test(viewer_client, shop) -> None:
    query = {**RANGE, "bot": shop["bot"].pk}
    default = viewer_client.get("/api/analytics/", query).json()
    included = viewer_client.get("/api/analytics/", {**query, "include_test": "true"}).json()

    assert (default["totals"]["conversations"], default["filter"]["include_test"]) == (7, False)
    assert (included["totals"]["conversations"], included["filter"]["include_test"]) == (8, True)
    assert viewer_client.get("/api/analytics/", {**query, "include_test": "maybe"}).status_code == 400


def test_the_api_schema_documents_include_test() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    parameters = {parameter["name"]: parameter for parameter in schema["paths"]["/api/analytics/"]["get"]["parameters"]}
    assert parameters["include_test"]["schema"] == {"type": "boolean", "default": False}
    assert "test chat" in parameters["include_test"]["description"]


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(client) -> None:
    OrganizationFactory()  # past first-run setup: with no organization, the dashboard leads to /setup/
    for url in ("/dashboard/analytics/", "/dashboard/analytics/export.csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


def test_a_user_with_no_organization_is_refused(client, django_user_model) -> None:
    OrganizationFactory()  # someone else's: with none at all, the dashboard leads to /setup/
    client.force_login(django_user_model.objects.create_user("loner", password="x"))

    response = client.get("/dashboard/analytics/")

    assert response.status_code == 403
    assert "No organization yet" in response.content.decode()


def test_an_admin_drafts_an_article_from_a_cluster_into_the_knowledge_base_form(client, shop) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=shop["organization"])
    shop["bot"].knowledge_bases.add(knowledge_base)
    membership = MembershipFactory(organization=shop["organization"], role="admin")
    client.force_login(membership.user)

    page = client.get("/dashboard/analytics/", {**RANGE, "bot": shop["bot"].pk})
    clusters = page.context["clusters"]
    assert [cluster["size"] for cluster in clusters] == [2, 2]
    refunds = next(cluster for cluster in clusters if "refund" in " ".join(cluster["questions"]).lower())
    assert "Draft an article" in page.content.decode()

    link = urlparse(refunds["draft_url"])
    assert link.path == f"/dashboard/knowledge-bases/{knowledge_base.pk}/"
    assert link.fragment == "add-documents"
    draft = parse_qs(link.query)
    form = client.get(link.path, {"draft_title": draft["draft_title"][0], "draft_text": draft["draft_text"][0]})
    body = form.content.decode()
    assert f'value="{refunds["draft_title"]}"' in body
    assert "Answer: " in body and "money back" in body


def test_the_summary_is_plain_json(shop) -> None:
    import json

    summary = analytics_summary(AnalyticsFilter(organization=shop["organization"], since=SINCE, until=UNTIL))
    assert json.loads(json.dumps(summary)) == summary


def test_organizations_are_kept_apart_in_the_page(client, shop) -> None:
    other: Organization = shop["stranger"].organization
    membership = MembershipFactory(organization=other, role="owner")
    client.force_login(membership.user)

    summary = client.get("/dashboard/analytics/", RANGE).context["summary"]

    assert summary["totals"]["conversations"] == 1
    assert summary["totals"]["thumbs_down"] == 1
    assert summary["moderation"] == [{"filter": "pii", "total": 1, "actions": {"block": 1}}]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_charts_draw_in_a_browser_and_a_cluster_opens_a_draft(live_server, page, shop, tmp_path) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=shop["organization"])
    shop["bot"].knowledge_bases.add(knowledge_base)
    MembershipFactory(user__username="ana", organization=shop["organization"], role="owner")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda answer: errors.append(answer.url) if answer.status >= 400 and "favicon" not in answer.url else None,
    )
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", "ana")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/dashboard/analytics/?since=2026-03-01&until=2026-03-03&bot={shop['bot'].pk}")
    page.wait_for_function("window.Chart && Chart.getChart('chart-thumbs')")
    drawn = page.evaluate("['chart-daily', 'chart-moderation', 'chart-thumbs'].map(id => !!Chart.getChart(id))")
    assert drawn == [True, True, True]
    assert errors == []
    page.screenshot(path=str(tmp_path / "analytics.png"), full_page=True)

    page.locator("article.cluster", has_text="money back").get_by_role("link", name="Draft an article").click()
    page.wait_for_url(f"**/dashboard/knowledge-bases/{knowledge_base.pk}/**")
    assert "Answer: " in page.input_value("#text")
    assert page.input_value("#title")
