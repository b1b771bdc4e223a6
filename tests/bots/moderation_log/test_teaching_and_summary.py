"""The moderation log for owners: grouped by filter and reason, the share of traffic each
filter flagged per day (page and API), and "not a problem" teaching a classifier filter
for one organization, shown and undone on the page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bots.models import Message, ModerationExample
from bots.moderation_log.selectors import moderation_daily_shares, moderation_log_groups, moderation_log_list
from bots.moderation_log.selectors import moderation_taught as taught_of
from neo_support.models import AuditEntry
from tests.bots.moderation_log.test_moderation_log import flagged, verdict
from tests.factories import BotFactory, ConversationFactory, MembershipFactory, MessageFactory
from workers.moderation.taught import TAUGHT_REASON, compared_text, untaught
from workers.moderation.vectors import embed_text
from workers.moderation.verdicts import Action, Finding

pytestmark = pytest.mark.django_db

LIST = "/dashboard/moderation/"
HATE = ("toxicity", "block", "hateful towards a group", [0, 18])
RUDE_WORD = ("blocklist", "flag", "blocked term 'darn'", [5, 9])


def scored(action: str, *findings: tuple[str, str, str, list[int]], score: float = 0.7) -> dict[str, Any]:
    """A verdict whose findings a classifier made (they carry its probability)."""
    made = verdict(action, *findings)
    made["findings"] = [{**finding, "score": score} for finding in made["findings"]]
    return made


def at(message: Message, days_ago: int) -> Message:
    when = timezone.now() - timedelta(days=days_ago)
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.refresh_from_db()
    return message


# Grouping


def test_the_log_groups_messages_by_filter_and_reason(client) -> None:
    owner = MembershipFactory(role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization))
    newest = at(flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)]), 0)
    at(flagged(conversation, verdicts=[verdict("flag", RUDE_WORD, RUDE_WORD)]), 2)  # counted once
    reviewed = at(flagged(conversation, verdicts=[verdict("block", RUDE_WORD, HATE)]), 1)
    Message.objects.filter(pk=reviewed.pk).update(moderation_review={"false_positive": True})
    flagged(ConversationFactory(), verdicts=[verdict("flag", RUDE_WORD)])  # another organization's
    client.force_login(owner.user)

    page = client.get(LIST, {"view": "grouped"})
    groups = [group for group, _query in page.context["groups"]]
    assert [(g.filter, g.reason, g.messages, g.not_a_problem) for g in groups] == [
        ("blocklist", "blocked term 'darn'", 3, 1),
        ("toxicity", "hateful towards a group", 1, 1),
    ]
    assert groups[0].last_seen == newest.created_at
    assert groups[0].not_a_problem_share == pytest.approx(1 / 3)
    body = page.content.decode()
    assert "By filter and reason" in body and "33 % (1)" in body
    # Each group links to its messages, through the list's filters.
    link = page.context["groups"][1][1]
    listed = client.get(f"{LIST}?{link}").context["rows"]
    assert [row["message"] for row in listed] == [reviewed]


def test_grouping_reads_a_bounded_number_of_messages(monkeypatch) -> None:
    owner = MembershipFactory(role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization))
    for _ in range(3):
        flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)])
    monkeypatch.setattr("bots.moderation_log.selectors.GROUPED_MESSAGES", 2)
    groups, truncated = moderation_log_groups(messages=moderation_log_list(organization=owner.organization))
    assert truncated and groups[0].messages == 2


def test_the_reason_filter_matches_the_whole_reason_only(client) -> None:
    owner = MembershipFactory(role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization))
    darn = flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)])
    flagged(conversation, verdicts=[verdict("flag", ("blocklist", "flag", "blocked term 'darned'", [5, 11]))])
    client.force_login(owner.user)
    rows = client.get(LIST, {"reason": "blocked term 'darn'"}).context["rows"]
    assert [row["message"] for row in rows] == [darn]


# The share of traffic flagged per day


def test_daily_shares_divide_each_filters_messages_by_the_screened_ones() -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization)
    conversation = ConversationFactory(bot=bot)
    for _ in range(2):
        at(MessageFactory(conversation=conversation, role="visitor", text="hello"), 1)
    at(flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)]), 1)
    at(flagged(conversation, role="bot", verdicts=[verdict("block", HATE, RUDE_WORD)]), 1)
    allowed = [{"action": "allow", "findings": [{"filter": "toxicity", "action": "allow",
                "reason": f"{TAUGHT_REASON} (hateful towards a group)", "span": [0, 5], "score": 0.7}]}]  # fmt: skip
    at(MessageFactory(conversation=conversation, role="visitor", moderation=allowed, moderation_action="allow"), 0)
    at(MessageFactory(conversation=conversation, role="visitor"), 40)  # outside the 30 days
    flagged(ConversationFactory(), verdicts=[verdict("block", HATE)])  # another organization's

    daily = moderation_daily_shares(organization=owner.organization)
    assert len(daily) == 30 and daily[-1]["date"] == timezone.localdate().isoformat()
    yesterday, today = daily[-2], daily[-1]
    assert yesterday["screened"] == 4
    assert yesterday["filters"]["blocklist"] == {
        "flagged": 2, "blocked": 0, "taught_allowed": 0, "flagged_share": 0.5, "blocked_share": 0.0
    }  # fmt: skip
    assert yesterday["filters"]["toxicity"]["flagged"] == 1 and yesterday["filters"]["toxicity"]["blocked"] == 1
    assert yesterday["filters"]["toxicity"]["flagged_share"] == 0.25
    assert today["screened"] == 1 and today["filters"]["toxicity"]["flagged"] == 0
    assert today["filters"]["toxicity"]["taught_allowed"] == 1
    assert sum(day["screened"] for day in daily) == 5
    # One bot's share: another bot of the organization has none of it.
    other_bot = BotFactory(organization=owner.organization)
    assert (
        sum(day["screened"] for day in moderation_daily_shares(organization=owner.organization, bot_id=other_bot.pk))
        == 0
    )


def test_the_page_charts_the_shares_with_the_table_behind_it(client) -> None:
    owner = MembershipFactory(role="owner")
    conversation = ConversationFactory(bot=BotFactory(organization=owner.organization))
    MessageFactory(conversation=conversation, role="visitor")
    flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)])
    client.force_login(owner.user)
    page = client.get(LIST)
    assert page.context["chart"]["series"] == {"blocklist": [0.0] * 29 + [0.5]}
    body = page.content.decode()
    assert 'id="chart-moderation-daily"' in body and "50.0 %" in body and 'id="moderation-data"' in body


def test_the_api_summary_gives_the_daily_shares_and_the_groups() -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization)
    conversation = ConversationFactory(bot=bot)
    MessageFactory(conversation=conversation, role="visitor")
    flagged(conversation, verdicts=[verdict("flag", RUDE_WORD)])
    client = APIClient()
    client.force_login(owner.user)

    response = client.get("/api/moderation/summary/", {"days": 7, "bot": bot.pk})
    assert response.status_code == 200
    summary = response.json()
    assert len(summary["daily"]) == 7 and summary["daily"][-1]["filters"]["blocklist"]["flagged_share"] == 0.5
    assert summary["groups"][0] | {"last_seen": None} == {
        "filter": "blocklist", "reason": "blocked term 'darn'", "messages": 1, "not_a_problem": 0, "last_seen": None
    }  # fmt: skip
    assert summary["groups_truncated"] is False
    other_bot = BotFactory()
    assert client.get("/api/moderation/summary/", {"bot": other_bot.pk}).status_code == 400
    assert client.get("/api/moderation/summary/", {"days": 0}).status_code == 400
    assert client.get("/api/moderation/summary/", {"days": 91}).status_code == 400
    assert "/api/moderation/summary/" in client.get("/api/schema/").content.decode()


# "Not a problem" teaches the filter


def hate_flag(conversation: Any, text: str) -> Message:
    return flagged(conversation, text=text, verdicts=[scored("block", (*HATE[:3], [0, len(text)]))])


def allowed_for(organization_id: int, text: str, name: str = "toxicity") -> bool:
    finding = Finding(name, Action.BLOCK, "hateful towards a group", 0, len(text), score=0.7)
    [after] = untaught([finding], taught_of(organization_id=organization_id), text, embed_text(text), embed_text)
    return after.action == Action.ALLOW


def test_not_a_problem_teaches_the_filter_for_the_organization_only(client) -> None:
    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization, moderation_policy={"allowlist": ["heck"]})
    text = "I am so sick of hearing people hate immigrants."
    message = hate_flag(ConversationFactory(bot=bot), text)
    other = MembershipFactory(role="owner")
    reworded = "I'm so tired of hearing people hating immigrants."
    assert not allowed_for(owner.organization_id, reworded)
    client.force_login(owner.user)

    response = client.post(f"/dashboard/moderation/{message.pk}/false-positive")
    assert response.status_code == 302
    [example] = ModerationExample.objects.all()
    assert (example.organization_id, example.filter, example.text, example.message_id) == (
        owner.organization_id, "toxicity", text, message.pk
    )  # fmt: skip
    bot.refresh_from_db()
    assert bot.moderation_policy == {"allowlist": ["heck"]}  # taught, not allowlisted
    assert allowed_for(owner.organization_id, reworded)
    assert not allowed_for(owner.organization_id, reworded, name="injection")  # another filter
    assert not allowed_for(other.organization_id, reworded)  # another organization
    assert not allowed_for(owner.organization_id, "Muslims are a plague on this country.")  # not like it
    entry = AuditEntry.objects.get(action="moderation.false_positive")
    assert entry.after["taught"] == [{"id": example.pk, "filter": "toxicity", "message": message.pk}]

    page = client.get(response["Location"]).content.decode()
    assert "taught toxicity to allow messages like it" in page
    assert f'id="taught-{example.pk}"' in page and text in page

    # Marking again teaches nothing new.
    assert client.post(f"/dashboard/moderation/{message.pk}/false-positive").status_code == 302
    assert ModerationExample.objects.count() == 1


def test_removing_a_taught_example_undoes_it(client) -> None:
    owner = MembershipFactory(role="owner")
    message = hate_flag(ConversationFactory(bot=BotFactory(organization=owner.organization)), "I hate immigrants.")
    client.force_login(owner.user)
    client.post(f"/dashboard/moderation/{message.pk}/false-positive")
    example = ModerationExample.objects.get()
    assert allowed_for(owner.organization_id, "I really hate immigrants!")

    response = client.post(
        f"/dashboard/moderation/taught/{example.pk}/remove", {"return_query": "view=grouped&bogus=1"}
    )
    assert response.status_code == 302 and response["Location"] == f"{LIST}?view=grouped"
    assert not ModerationExample.objects.exists()
    assert not allowed_for(owner.organization_id, "I really hate immigrants!")  # the cache was re-read
    entry = AuditEntry.objects.get(action="moderation.untaught")
    assert entry.before == {"id": example.pk, "filter": "toxicity", "message": message.pk}
    assert "judges messages like it again" in client.get(response["Location"]).content.decode()
    # The message stays reviewed; marking it again teaches it again.
    client.post(f"/dashboard/moderation/{message.pk}/false-positive")
    assert ModerationExample.objects.count() == 1


def test_taught_examples_go_with_their_message() -> None:
    owner = MembershipFactory(role="owner")
    message = hate_flag(ConversationFactory(bot=BotFactory(organization=owner.organization)), "I hate immigrants.")
    ModerationExample.objects.create(organization=owner.organization, filter="toxicity", text="x", message=message)
    message.conversation.delete()
    assert not ModerationExample.objects.exists()


def test_bad_requests_to_teach_or_undo_are_refused(client) -> None:
    owner = MembershipFactory(role="owner")
    theirs = hate_flag(ConversationFactory(), "I hate immigrants.")
    their_example = ModerationExample.objects.create(
        organization=theirs.conversation.bot.organization, filter="toxicity", text="x", message=theirs
    )
    client.force_login(owner.user)
    assert client.post("/dashboard/moderation/999999/false-positive").status_code == 404
    assert client.post(f"/dashboard/moderation/{theirs.pk}/false-positive").status_code == 404
    assert client.post("/dashboard/moderation/taught/999999/remove").status_code == 404
    assert client.post(f"/dashboard/moderation/taught/{their_example.pk}/remove").status_code == 404
    assert client.get(f"/dashboard/moderation/taught/{their_example.pk}/remove").status_code == 405
    viewer = MembershipFactory(role="viewer", organization=their_example.organization)
    client.force_login(viewer.user)
    assert client.post(f"/dashboard/moderation/taught/{their_example.pk}/remove").status_code == 403
    assert ModerationExample.objects.filter(pk=their_example.pk).exists()
    assert not ModerationExample.objects.filter(message=theirs).exclude(pk=their_example.pk).exists()


def test_a_reply_screens_the_question_with_what_its_organization_taught() -> None:
    """Through the worker's reply path (bot_settings reads the organization's examples)."""
    from bots.chat.replies import reply_to_question

    owner = MembershipFactory(role="owner")
    bot = BotFactory(organization=owner.organization, moderation_policy={"injection": "off"})
    other_bot = BotFactory(moderation_policy={"injection": "off"})
    question = "I really hate immigrants!"
    assert reply_to_question(bot=bot, question=question).blocked
    marked = hate_flag(ConversationFactory(bot=bot), "I hate immigrants.")
    ModerationExample.objects.create(
        organization=owner.organization,
        filter="toxicity",
        text=marked.text,
        message=marked,
        embedding=embed_text(compared_text("toxicity", marked.text)).tobytes(),
    )

    outcome = reply_to_question(bot=bot, question=question)
    assert not outcome.blocked
    assert outcome.question_verdict is not None
    [finding] = outcome.question_verdict["findings"]
    assert finding["action"] == "allow" and finding["reason"].startswith(TAUGHT_REASON)
    assert reply_to_question(bot=other_bot, question=question).blocked


def test_an_api_key_reads_the_summary_with_the_moderation_read_scope_only() -> None:
    from neo_support.services import api_key_create

    owner = MembershipFactory(role="owner")
    client = APIClient()
    _, scoped = api_key_create(organization=owner.organization, name="mod", scopes=["moderation:read"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scoped}")
    assert client.get("/api/moderation/summary/").status_code == 200
    _, other = api_key_create(organization=owner.organization, name="stats", scopes=["analytics:read"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other}")
    response = client.get("/api/moderation/summary/")
    assert response.status_code == 403 and "moderation:read" in response.content.decode()
