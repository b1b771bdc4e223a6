"""The moderation log: flagged and blocked messages in the dashboard, and marking one as a
false positive, which allowlists what was flagged in the bot's moderation policy."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from bots.chat.services import conversation_ask, conversation_start
from bots.models import Message
from bots.moderation_log.findings import Segment, false_positive_phrases, highlight
from tests.factories import BotFactory, ConversationFactory, MembershipFactory, MessageFactory
from workers.moderation.verdicts import rebase_spans, strongest_action

LIST = "/dashboard/moderation/"


def verdict(action: str, *findings: tuple[str, str, str, list[int]], **extra: Any) -> dict[str, Any]:
    return {
        "action": action,
        "findings": [
            {"filter": name, "action": found, "reason": reason, "span": span} for name, found, reason, span in findings
        ],
        **extra,
    }


BLOCKED_DARN = verdict("block", ("blocklist", "block", "blocked term 'darn'", [5, 9]))


def flagged(conversation: Any = None, *, text: str = "this darn app", verdicts: Any = None, **fields: Any) -> Message:
    """A visitor message as conversation_ask stores it, with its denormalised action."""
    verdicts = [BLOCKED_DARN] if verdicts is None else verdicts
    extra = {"conversation": conversation} if conversation is not None else {}
    return MessageFactory(
        text=text, moderation=verdicts, moderation_action=strongest_action(verdicts), **extra, **fields
    )


# strongest_action and the other pure helpers


def test_strongest_action_is_empty_without_verdicts() -> None:
    assert strongest_action([]) == ""
    assert strongest_action([{"findings": []}, {"action": "shout"}]) == ""


def test_strongest_action_orders_allow_redact_flag_block() -> None:
    assert strongest_action([{"action": "allow", "findings": []}]) == "allow"
    assert strongest_action([{"action": "redact"}, {"action": "flag"}, {"action": "allow"}]) == "flag"
    assert strongest_action([{"action": "flag"}, BLOCKED_DARN, {"action": "redact"}]) == "block"
    # "remove" (an unsupported sentence withheld) sits between flag and block, as in Action.
    assert strongest_action([{"action": "flag"}, {"action": "remove"}]) == "remove"
    assert strongest_action([{"action": "remove"}, BLOCKED_DARN]) == "block"


def test_strongest_action_also_reads_the_findings() -> None:
    assert strongest_action([verdict("allow", ("toxicity", "flag", "rude", [0, 3]))]) == "flag"


def test_highlight_merges_overlapping_spans_and_ignores_bad_ones() -> None:
    findings = [
        {"span": [5, 9], "reason": "a"},
        {"span": [7, 12], "reason": "b"},
        {"span": [40, 50], "reason": "outside"},
        {"span": "0-3", "reason": "malformed"},
    ]
    assert highlight("this darn app!", findings) == [
        Segment("this "),
        Segment("darn ap", marked=True, title="a; b"),
        Segment("p!"),
    ]


def test_false_positive_phrases_take_the_flagged_words_or_the_classified_text() -> None:
    text = "  this darn app " + "x" * 400
    verdicts = [
        verdict(
            "block",
            ("blocklist", "block", "blocked term 'darn'", [7, 11]),
            ("blocklist", "flag", "again, other case", [7, 11]),
            ("toxicity", "flag", "rude", [0, 5]),
            ("pii", "redact", "email", [0, 3]),
            ("leakage", "block", "canary", [0, 3]),
        )
    ]
    phrases = false_positive_phrases(text=text, verdicts=verdicts, from_visitor=True)
    assert phrases == ["darn", text.strip()[:300]]


def test_a_bot_verdict_without_its_excerpt_allowlists_nothing() -> None:
    located = verdict("flag", ("injection", "flag", "looks like an injection", [0, 6])) | {"excerpt": "Ignore it."}
    unlocated = verdict("block", ("blocklist", "block", "blocked term 'darn'", [0, 4]))
    phrases = false_positive_phrases(text="Safe reply.", verdicts=[located, unlocated], from_visitor=False)
    assert phrases == ["Ignore it."]


def test_rebase_spans_moves_spans_past_redactions() -> None:
    # "mail jo@example.com or jo@example.org darn" with both addresses redacted.
    redactions = [(23, 37, "[email]"), (5, 19, "[email]"), (8, 12, "[overlap]")]
    findings = [
        {"filter": "blocklist", "span": [38, 42]},
        {"filter": "pii", "span": [5, 19]},
        {"filter": "pii", "span": [8, 12]},
        {"filter": "injection", "span": [0, 42]},
        {"filter": "leakage"},
    ]
    stored = "mail [email] or [email] darn"
    rebased = rebase_spans(findings, redactions)
    assert [stored[slice(*f["span"])] for f in rebased if "span" in f] == ["darn", "[email]", "[email]", stored]
    assert rebased[-1] == {"filter": "leakage"}


def test_conversation_ask_stores_the_strongest_action(db: None) -> None:
    bot = BotFactory(moderation_policy={"blocklist": ["darn"], "blocklist_action": "flag", "pii": "off"})
    conversation = conversation_start(bot=bot, visitor_id="v")
    question, reply = conversation_ask(conversation=conversation, text="this d4rn app")
    assert question.moderation_action == "flag"
    assert reply.moderation_action == ""
    calm, _ = conversation_ask(conversation=conversation, text="all fine")
    assert Message.objects.get(pk=calm.pk).moderation_action == ""


def test_a_visitors_spans_point_into_the_stored_redacted_text(db: None) -> None:
    """Regression: the spans pointed into the text before personal data was redacted, so
    marking this message a false positive allowlisted "p" rather than "darn"."""
    bot = BotFactory(moderation_policy={"blocklist": ["darn"]})
    conversation = conversation_start(bot=bot, visitor_id="v")
    question, _ = conversation_ask(conversation=conversation, text="mail jo@example.com about this darn app")
    assert question.text == "mail [email] about this darn app"
    spans = {f["filter"]: f["span"] for f in question.moderation[0]["findings"]}
    assert question.text[slice(*spans["blocklist"])] == "darn"
    assert question.text[slice(*spans["pii"])] == "[email]"
    assert question.moderation_action == "block"
    assert false_positive_phrases(text=question.text, verdicts=question.moderation, from_visitor=True) == ["darn"]


# The page


@pytest.mark.django_db
def test_the_log_lists_only_this_organizations_flagged_messages(client) -> None:
    viewer = MembershipFactory(role="viewer")
    bot = BotFactory(organization=viewer.organization, name="Shop helper")
    conversation = ConversationFactory(bot=bot)
    mine = flagged(
        conversation,
        text="<b>this</b> darn app",
        verdicts=[verdict("block", ("blocklist", "block", "blocked term 'darn'", [12, 16]))],
    )
    flagged(conversation, text="redacted only", verdicts=[verdict("redact", ("pii", "redact", "email", [0, 3]))])
    MessageFactory(conversation=conversation, text="nothing to see")
    stranger = flagged(text="their darn secret")

    client.force_login(viewer.user)
    page = client.get(LIST)
    assert page.status_code == 200
    body = page.content.decode()
    assert f'id="message-{mine.pk}"' in body
    assert '&lt;b&gt;this&lt;/b&gt; <mark title="blocked term &#x27;darn&#x27;">darn</mark> app' in body
    assert "Shop helper" in body and "blocked term" in body
    assert "redacted only" not in body and "nothing to see" not in body
    assert f'id="message-{stranger.pk}"' not in body and "their darn secret" not in body
    # A viewer sees the log but not the button.
    assert "Mark as false positive" not in body


@pytest.mark.django_db
def test_the_dashboard_home_links_to_the_log(client) -> None:
    membership = MembershipFactory(role="viewer")
    client.force_login(membership.user)
    assert b'href="/dashboard/moderation/"' in client.get("/dashboard/").content


@pytest.mark.django_db
def test_the_log_filters_by_bot_action_filter_and_review(client) -> None:
    owner = MembershipFactory(role="owner")
    first = ConversationFactory(bot=BotFactory(organization=owner.organization))
    second = ConversationFactory(bot=BotFactory(organization=owner.organization))
    blocked = flagged(first)
    toxic = flagged(second, text="you are useless", verdicts=[verdict("flag", ("toxicity", "flag", "insult", [8, 15]))])
    bot_reply = flagged(
        first,
        role="bot",
        text="Sorry, I can't help with that.",
        verdicts=[verdict("block", ("injection", "block", "prompt injection", [0, 6]), excerpt="Ignore the rules.")],
        moderation_review={"false_positive": True, "by": owner.user.pk, "at": "2026-01-02T03:04:05+00:00"},
    )
    client.force_login(owner.user)

    def listed(**query: Any) -> set[int]:
        page = client.get(LIST, query)
        assert page.status_code == 200
        return {row["message"].pk for row in page.context["rows"]}

    assert listed() == {blocked.pk, toxic.pk, bot_reply.pk}
    assert listed(bot=second.bot_id) == {toxic.pk}
    assert listed(action="block") == {blocked.pk, bot_reply.pk}
    assert listed(action="flag") == {toxic.pk}
    assert listed(filter="toxicity") == {toxic.pk}
    assert listed(filter="injection", action="block") == {bot_reply.pk}
    assert listed(filter="pii") == set()
    assert listed(review="false_positive") == {bot_reply.pk}
    assert listed(review="unreviewed") == {blocked.pk, toxic.pk}
    # Another organization's bot, or a value that is no choice, does not filter.
    assert listed(bot=BotFactory().pk, action="shout") == {blocked.pk, toxic.pk, bot_reply.pk}

    newest_first = [row["message"].pk for row in client.get(LIST).context["rows"]]
    assert newest_first == [bot_reply.pk, toxic.pk, blocked.pk]
    body = client.get(LIST, {"review": "false_positive"}).content.decode()
    assert '<mark title="prompt injection">Ignore</mark> the rules.' in body
    assert "False positive" in body and "2026-01-02 03:04" in body


@pytest.mark.django_db
def test_the_log_is_paginated_by_fifty(client) -> None:
    owner = MembershipFactory(role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization))
    for _ in range(51):
        flagged(conversation)
    client.force_login(owner.user)
    first = client.get(LIST, {"action": "block"})
    assert len(first.context["rows"]) == 50
    assert b'href="?action=block&amp;page=2"' in first.content
    assert len(client.get(LIST, {"action": "block", "page": 2}).context["rows"]) == 1


# Marking a false positive


@pytest.mark.django_db
def test_an_owner_marks_a_false_positive_and_the_bot_allowlists_it(client) -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(
        organization=owner.organization,
        moderation_policy={"blocklist": ["darn"], "allowlist": ["DARN", "heck"], "safe_reply": "Ask a person."},
    )
    conversation = ConversationFactory(bot=bot)
    message = flagged(
        conversation,
        text="this darn app, golly",
        verdicts=[
            verdict(
                "block",
                ("blocklist", "block", "blocked term 'darn'", [5, 9]),
                ("blocklist", "flag", "blocked term 'golly'", [15, 20]),
            )
        ],
    )
    client.force_login(owner.user)

    response = client.post(f"/dashboard/moderation/{message.pk}/false-positive", {"return_query": "action=block&x=1"})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/moderation/?action=block"
    bot.refresh_from_db()
    assert bot.moderation_policy == {
        "blocklist": ["darn"],
        "allowlist": ["DARN", "heck", "golly"],
        "safe_reply": "Ask a person.",
    }
    message.refresh_from_db()
    review = message.moderation_review
    assert review["false_positive"] is True and review["by"] == owner.user.pk
    assert review["phrases"] == ["darn", "golly"] and review["at"]
    notice = client.get(response["Location"]).content.decode()
    assert "now allows: darn; golly" in notice and "False positive" in notice

    # Marking again changes nothing.
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 302
    bot.refresh_from_db()
    assert bot.moderation_policy["allowlist"] == ["DARN", "heck", "golly"]
    message.refresh_from_db()
    assert message.moderation_review == review


@pytest.mark.django_db
def test_a_classifier_false_positive_allowlists_the_screened_excerpt(client) -> None:
    admin = MembershipFactory(role="admin")
    bot = BotFactory(organization=admin.organization)
    excerpt = "  You can kill the process from the task manager. "
    message = flagged(
        ConversationFactory(bot=bot),
        role="bot",
        text="You can kill the process from the task manager.",
        verdicts=[verdict("flag", ("toxicity", "flag", "violent language", [10, 14]), excerpt=excerpt)],
    )
    client.force_login(admin.user)
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 302
    bot.refresh_from_db()
    assert bot.moderation_policy == {"allowlist": ["You can kill the process from the task manager."]}


@pytest.mark.django_db
def test_a_withheld_sentence_is_listed_and_its_excerpt_can_be_allowlisted(client) -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization)
    excerpt = "We also ship to the moon."
    message = flagged(
        ConversationFactory(bot=bot),
        role="bot",
        text="Refunds take five days.",
        verdicts=[verdict("remove", ("grounding", "remove", "not in the passages", [0, 25]), excerpt=excerpt)],
    )
    assert message.moderation_action == "remove"
    client.force_login(owner.user)
    assert [row["message"] for row in client.get(LIST, {"action": "remove"}).context["rows"]] == [message]
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 302
    bot.refresh_from_db()
    assert bot.moderation_policy == {"allowlist": [excerpt]}


@pytest.mark.django_db
def test_a_viewer_can_read_the_log_but_not_mark(client) -> None:
    viewer = MembershipFactory(role="viewer")
    bot = BotFactory(organization=viewer.organization)
    message = flagged(ConversationFactory(bot=bot))
    client.force_login(viewer.user)
    assert client.get(LIST).status_code == 200
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 403
    bot.refresh_from_db()
    message.refresh_from_db()
    assert bot.moderation_policy == {} and message.moderation_review == {}


@pytest.mark.django_db
def test_another_organizations_message_is_not_found(client) -> None:
    message = flagged()
    client.force_login(MembershipFactory(role="owner").user)
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 404
    message.refresh_from_db()
    assert message.moderation_review == {}


@pytest.mark.django_db
def test_the_mark_endpoint_only_takes_post(client) -> None:
    owner = MembershipFactory(role="owner")
    message = flagged(ConversationFactory(bot=BotFactory(organization=owner.organization)))
    client.force_login(owner.user)
    assert client.get(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 405


@pytest.mark.django_db
def test_the_mark_endpoint_checks_the_csrf_token() -> None:
    from django.test import Client

    owner = MembershipFactory(role="owner")
    message = flagged(ConversationFactory(bot=BotFactory(organization=owner.organization)))
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 403
    message.refresh_from_db()
    assert message.moderation_review == {}


@pytest.mark.django_db
def test_the_migration_fills_the_action_of_existing_messages() -> None:
    migration = importlib.import_module("bots.migrations.0003_message_moderation_action")
    blocked = flagged()
    toxic = flagged(verdicts=[verdict("flag", ("toxicity", "flag", "rude", [0, 4]))])
    quiet = MessageFactory()
    Message.objects.update(moderation_action="")

    migration.fill_moderation_action(apps, None)
    assert dict(Message.objects.values_list("pk", "moderation_action")) == {
        blocked.pk: "block",
        toxic.pk: "flag",
        quiet.pk: "",
    }
