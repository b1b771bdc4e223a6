"""REST API v1: bots, knowledge bases, conversations (JSON and Server-Sent Events),
feedback; key scopes, roles, one error format, pagination, rate limits, the schema."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from bots.models import Bot, Conversation, Feedback, Message
from neo_support import rate_limits
from neo_support.services import api_key_create
from retrieval.models import KnowledgeBase
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.factories import (
    BotFactory,
    ConversationFactory,
    KnowledgeBaseFactory,
    MembershipFactory,
    MessageFactory,
    OrganizationFactory,
)

pytestmark = pytest.mark.django_db


def key_client(organization, scopes: list[str] | None = None) -> APIClient:
    _, raw_key = api_key_create(organization=organization, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_rate_windows(settings):
    settings.NEO_RATE_API = "1000/minute"
    rate_limits.rate_reset()
    yield
    rate_limits.rate_reset()


def test_bots_are_created_read_changed_and_deleted() -> None:
    knowledge_base = KnowledgeBaseFactory()
    api = key_client(knowledge_base.organization)
    created = api.post(
        "/api/bots/",
        {
            "name": "Shop helper",
            "instructions": "Be brief.",
            "knowledge_bases": [knowledge_base.pk],
            "allowed_origins": ["https://Shop.example/", "https://*.example.org"],
            "generation": {"temperature": 0.5},
            "moderation_policy": {"blocklist": ["darn"], "pii": "flag"},
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["knowledge_bases"] == [knowledge_base.pk]
    assert body["allowed_origins"] == ["https://shop.example", "https://*.example.org"]
    assert body["generation"]["temperature"] == 0.5 and body["generation"]["max_new_tokens"] == 200
    assert body["public_key"].startswith("pk_")

    bot = Bot.objects.get(pk=body["id"])
    bot.moderation_policy = {**bot.moderation_policy, "set_elsewhere": True}
    bot.save()
    changed = api.patch(f"/api/bots/{bot.pk}/", {"moderation_policy": {"toxicity": "flag"}}, format="json")
    assert changed.status_code == 200, changed.json()
    bot.refresh_from_db()
    assert bot.moderation_policy == {"blocklist": ["darn"], "pii": "flag", "toxicity": "flag", "set_elsewhere": True}

    listed = api.get("/api/bots/").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "Shop helper"
    assert api.delete(f"/api/bots/{bot.pk}/").status_code == 204
    assert not Bot.objects.filter(pk=bot.pk).exists()


def test_a_bots_base_model_round_trips_and_only_a_served_one_is_accepted(settings) -> None:
    settings.NEO_MODEL, settings.NEO_MODELS = "org/default-model", ["org/second-model"]
    api = key_client(OrganizationFactory())
    created = api.post("/api/bots/", {"name": "Chooser", "base_model": "org/second-model"}, format="json")
    assert created.status_code == 201, created.json()
    bot_url = f"/api/bots/{created.json()['id']}/"
    read = api.get(bot_url).json()
    assert read["base_model"] == read["answering_model"] == "org/second-model"
    assert Bot.objects.get().base_model == "org/second-model"

    refused = api.patch(bot_url, {"base_model": "org/unknown"}, format="json")
    assert refused.status_code == 400
    [message] = refused.json()["error"]["details"]["fields"]["base_model"]
    assert message == "org/unknown is not served here; one of: org/default-model, org/second-model."
    assert api.get(bot_url).json()["base_model"] == "org/second-model"  # nothing changed

    default = api.patch(bot_url, {"base_model": ""}, format="json").json()
    assert default["base_model"] == "" and default["answering_model"] == "org/default-model"
    assert api.patch(bot_url, {"base_model": "org/second-model"}, format="json").status_code == 200
    settings.NEO_MODELS = []  # the operator stopped serving it: kept, but NEO_MODEL answers
    stale = api.get(bot_url).json()
    assert stale["base_model"] == "org/second-model" and stale["answering_model"] == "org/default-model"
    refused_create = api.post("/api/bots/", {"name": "Late", "base_model": "org/second-model"}, format="json")
    assert refused_create.status_code == 400 and Bot.objects.count() == 1


def test_a_change_of_base_model_that_leaves_the_tuned_version_unused_is_saved_with_a_warning(settings) -> None:
    from bots.models import ModelVersion, ModelVersionStatus

    settings.NEO_MODEL, settings.NEO_MODELS = "org/default-model", ["org/second-model"]
    bot = BotFactory()
    version = ModelVersion.objects.create(
        bot=bot, number=4, base_model="org/default-model", status=ModelVersionStatus.READY
    )
    bot.model_version = version
    bot.save()
    api = key_client(bot.organization)
    bot_url = f"/api/bots/{bot.pk}/"
    assert api.get(bot_url).json()["warnings"] == []

    changed = api.patch(bot_url, {"base_model": "org/second-model"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert changed.json()["answering_model"] == "org/second-model"
    assert changed.json()["warnings"] == [
        "Tuned version v4 was trained on org/default-model and will not be used until it is re-tuned on "
        "org/second-model or the base model is switched back to org/default-model."
    ]
    bot.refresh_from_db()
    assert bot.base_model == "org/second-model" and bot.model_version == version  # nothing rejected
    assert api.get("/api/bots/").json()["results"][0]["warnings"] == changed.json()["warnings"]
    assert api.patch(bot_url, {"base_model": ""}, format="json").json()["warnings"] == []


def test_the_served_models_are_listed_with_their_state_for_every_organization(settings, tiny_neo) -> None:
    from neo_support.model_queues import generation_queue
    from workers.generation.loading import holder_for

    settings.NEO_TASKS_IN_PROCESS = True
    second = "/nonexistent/second-model"
    settings.NEO_MODELS = [second]
    holder_for(second).reset()
    listed = key_client(OrganizationFactory(), scopes=["bots:read"]).get("/api/models/")
    assert listed.status_code == 200, listed.json()
    body = listed.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    default, other = body["results"]
    assert default == {
        "name": str(tiny_neo), "default": True, "queue": "generation", "state": "not_loaded", "message": "",
        "device": None, "dtype": None, "live_workers": None,
    }  # fmt: skip
    assert (other["name"], other["default"], other["state"]) == (second, False, "unavailable")
    assert other["queue"] == generation_queue(second, default_model=str(tiny_neo))
    assert "second-model" in other["message"]  # what to do about the missing weights

    assert key_client(OrganizationFactory()).get("/api/models/").json() == body  # the same for everyone
    refused = key_client(OrganizationFactory(), scopes=["tickets:read"]).get("/api/models/")
    assert refused.status_code == 403 and "bots:read" in refused.json()["error"]["message"]
    assert APIClient().get("/api/models/").status_code == 401


def test_with_workers_apart_each_served_model_has_its_workers_state(settings, redis_url) -> None:
    import uuid

    from neo_support.heartbeat import WorkerBeat, heartbeat_clear, heartbeat_write
    from neo_support.model_queues import generation_queue
    from neo_support.redis_client import get_redis

    settings.NEO_TASKS_IN_PROCESS = False
    tag = uuid.uuid4().hex[:8]
    default, second = f"org/default-{tag}", f"org/second-{tag}"
    settings.NEO_MODEL, settings.NEO_MODELS = default, [second]
    loaded = {"state": "loaded", "name": default, "device": "cuda:0", "dtype": "bfloat16"}
    beat = WorkerBeat(hostname=f"gen-{tag}", pid=1, queues=["generation"], details={"models": [loaded]})
    get_redis.cache_clear()
    redis = get_redis()
    heartbeat_write(redis, beat=beat, ttl_seconds=30)
    try:
        listed = key_client(OrganizationFactory()).get("/api/models/").json()["results"]
    finally:
        heartbeat_clear(redis, beat=beat)
        get_redis.cache_clear()
    by_name = {model["name"]: model for model in listed}
    assert by_name[default] | {"queue": "generation"} == by_name[default]
    assert (by_name[default]["state"], by_name[default]["device"], by_name[default]["live_workers"]) == (
        "loaded", "cuda:0", 1,
    )  # fmt: skip
    queue = generation_queue(second, default_model=default)
    assert (by_name[second]["state"], by_name[second]["live_workers"]) == ("unknown", 0)
    assert by_name[second]["message"] == f"no live worker consumes queue {queue}"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x", "answer_threshold": 0.2, "handoff_threshold": 0.5}, "handoff_threshold"),
        ({"name": "x", "allowed_origins": ["shop.example/page"]}, "allowed_origins"),
        ({"name": "x", "theme": {"accent": "red"}}, "theme"),
        ({"name": "x", "generation": {"max_new_tokens": 0}}, "generation"),
        ({"name": "x", "answer_mode": "telepathic"}, "answer_mode"),
        ({"name": "x", "moderation_policy": {"pii": "shout"}}, "moderation_policy"),
    ],
)
def test_invalid_bot_input_is_a_400_naming_the_field(payload, field) -> None:
    organization = OrganizationFactory()
    response = key_client(organization).post("/api/bots/", payload, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]["fields"]
    assert not Bot.objects.exists()


def test_another_tenants_objects_are_404_and_their_ids_are_refused() -> None:
    ours, theirs = OrganizationFactory(), OrganizationFactory()
    their_bot = BotFactory(organization=theirs)
    their_kb = KnowledgeBaseFactory(organization=theirs)
    their_conversation = ConversationFactory(bot=their_bot)
    their_reply = MessageFactory(conversation=their_conversation, role="bot")
    api = key_client(ours)
    for url in (
        f"/api/bots/{their_bot.pk}/",
        f"/api/knowledge-bases/{their_kb.pk}/",
        f"/api/conversations/{their_conversation.pk}/",
        f"/api/knowledge-bases/{their_kb.pk}/documents/",
    ):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"
    assert api.patch(f"/api/bots/{their_bot.pk}/", {"name": "mine"}, format="json").status_code == 404
    assert api.delete(f"/api/knowledge-bases/{their_kb.pk}/").status_code == 404
    assert api.post(f"/api/messages/{their_reply.pk}/feedback/", {"rating": "up"}, format="json").status_code == 404
    refused = api.post("/api/bots/", {"name": "x", "knowledge_bases": [their_kb.pk]}, format="json")
    assert refused.status_code == 400 and "knowledge_bases" in refused.json()["error"]["details"]["fields"]
    started = api.post("/api/conversations/", {"bot": their_bot.pk, "text": "hello"}, format="json")
    assert started.status_code == 404
    assert api.get("/api/bots/").json()["count"] == 0
    their_bot.refresh_from_db()
    assert their_bot.name != "mine" and KnowledgeBase.objects.filter(pk=their_kb.pk).exists()


def test_knowledge_bases_keep_their_chunking_and_unique_names() -> None:
    organization = OrganizationFactory()
    api = key_client(organization)
    created = api.post("/api/knowledge-bases/", {"name": "Help", "chunk_size": 128, "chunk_overlap": 16})
    assert created.status_code == 201, created.json()
    kb_id = created.json()["id"]
    assert created.json()["document_count"] == 0
    assert api.post("/api/knowledge-bases/", {"name": "Help"}).status_code == 400
    assert (
        api.post("/api/knowledge-bases/", {"name": "Other", "chunk_size": 64, "chunk_overlap": 64}).status_code == 400
    )
    refused = api.patch(f"/api/knowledge-bases/{kb_id}/", {"chunk_size": 256}, format="json")
    assert refused.status_code == 400 and "chunk_size" in refused.json()["error"]["details"]["fields"]
    renamed = api.patch(f"/api/knowledge-bases/{kb_id}/", {"description": "FAQ"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["chunk_size"] == 128
    assert api.delete(f"/api/knowledge-bases/{kb_id}/").status_code == 204
    assert not KnowledgeBase.objects.filter(pk=kb_id).exists()


def test_scopes_limit_what_a_key_may_do() -> None:
    organization = OrganizationFactory()
    bot = BotFactory(organization=organization)
    reader = key_client(organization, scopes=["bots:read"])
    assert reader.get("/api/bots/").status_code == 200
    refused = reader.patch(f"/api/bots/{bot.pk}/", {"name": "changed"}, format="json")
    assert refused.status_code == 403 and "bots:write" in refused.json()["error"]["message"]
    assert reader.get("/api/tickets/").status_code == 403
    assert reader.get("/api/conversations/").status_code == 403
    writer = key_client(organization, scopes=["bots:write"])
    assert writer.patch(f"/api/bots/{bot.pk}/", {"name": "changed"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("role", "url", "method", "expected"),
    [
        ("viewer", "/api/bots/", "get", 200),
        ("viewer", "/api/bots/", "post", 403),
        ("agent", "/api/bots/", "get", 403),
        ("agent", "/api/conversations/", "get", 200),
        ("agent", "/api/tickets/", "get", 200),
        ("admin", "/api/bots/", "post", 201),
        ("owner", "/api/knowledge-bases/", "post", 201),
    ],
)
def test_members_act_through_their_session_within_their_role(role, url, method, expected) -> None:
    membership = MembershipFactory(role=role)
    client = APIClient()
    client.force_login(membership.user)
    payload = {"name": f"From the {role}"} if method == "post" else None
    response = getattr(client, method)(url, payload, format="json")
    assert response.status_code == expected, response.content


def test_no_credentials_is_a_401_and_a_bad_key_too() -> None:
    anonymous = APIClient()
    response = anonymous.get("/api/bots/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer neo_deadbeef_nope")
    assert anonymous.get("/api/bots/").status_code == 401


def test_lists_are_paginated_and_filtered() -> None:
    organization = OrganizationFactory()
    bot, other_bot = BotFactory(organization=organization), BotFactory(organization=organization)
    for _ in range(3):
        ConversationFactory(bot=bot)
    ConversationFactory(bot=other_bot, status="resolved")
    api = key_client(organization)
    first = api.get("/api/conversations/", {"page_size": 2}).json()
    assert first["count"] == 4 and len(first["results"]) == 2 and first["next"]
    assert api.get("/api/conversations/", {"bot": bot.pk}).json()["count"] == 3
    assert api.get("/api/conversations/", {"status": "resolved"}).json()["count"] == 1
    bad = api.get("/api/conversations/", {"status": "sleeping"})
    assert bad.status_code == 400 and "status" in bad.json()["error"]["details"]["fields"]
    assert api.get("/api/conversations/", {"page": 99}).status_code == 404


def test_the_rate_limit_answers_429_with_retry_after(settings) -> None:
    settings.NEO_RATE_API = "3/minute"
    rate_limits.rate_reset()
    api = key_client(OrganizationFactory())
    statuses = [api.get("/api/bots/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.get("/api/bots/")
    assert limited.json()["error"]["code"] == "throttled" and int(limited["Retry-After"]) >= 1


def test_the_schema_and_its_docs_are_served_without_a_cdn(client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/bots/",
        "/api/conversations/{id}/messages/",
        "/api/tickets/",
        "/api/messages/{message_id}/feedback/",
    ):
        assert path in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn." not in docs.content and b"unpkg" not in docs.content


@pytest.fixture
def answering_bot(settings):
    settings.NEO_MODEL = "/nonexistent/model"  # extractive answers
    knowledge_base = KnowledgeBaseFactory()
    text = "# Billing\n\n## Refunds\n\nRefunds reach your card within five working days."
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Billing", text=text, queue=False)]
    )
    bot = BotFactory(organization=knowledge_base.organization, answer_threshold=0.0, handoff_threshold=0.0)
    bot.knowledge_bases.add(knowledge_base)
    return bot


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_question_gets_its_answer_as_json_and_can_be_rated(answering_bot) -> None:
    api = key_client(answering_bot.organization)
    response = api.post(
        "/api/conversations/",
        {"bot": answering_bot.pk, "text": "How long do refunds take?", "visitor_id": "crm-42"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["reply"]["status"] == "done" and "five working days" in body["reply"]["text"]
    assert body["reply"]["citations"][0]["title"] == "Billing"
    conversation = Conversation.objects.get(pk=body["conversation"])
    assert conversation.channel == "api" and conversation.visitor_id == "crm-42"

    again = api.post(f"/api/conversations/{conversation.pk}/messages/", {"text": "And to PayPal?"}, format="json")
    assert again.status_code == 200 and again.json()["reply"]["status"] in ("done", "failed")
    transcript = api.get(f"/api/conversations/{conversation.pk}/").json()
    assert [m["role"] for m in transcript["messages"]] == ["visitor", "bot", "visitor", "bot"]

    rated = api.post(
        f"/api/messages/{body['reply']['id']}/feedback/", {"rating": "down", "comment": "vague"}, format="json"
    )
    assert rated.status_code == 201
    assert Feedback.objects.get(message_id=body["reply"]["id"]).rating == -1
    not_a_reply = api.post(f"/api/messages/{body['question']['id']}/feedback/", {"rating": "up"}, format="json")
    assert not_a_reply.status_code == 400


async def read_all(stream) -> list[bytes]:
    return [chunk async for chunk in stream]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("in_process_tasks")
def test_a_question_gets_its_answer_as_server_sent_events(answering_bot) -> None:
    api = key_client(answering_bot.organization)
    response = api.post(
        "/api/conversations/",
        {"bot": answering_bot.pk, "text": "How long do refunds take?"},
        format="json",
        HTTP_ACCEPT="text/event-stream",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    body = b"".join(async_to_sync(read_all)(response.streaming_content)).decode()
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    names = [name for name, _ in events]
    assert names[0] == "accepted" and names[-1] == "done" and "delta" in names
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert done["text"] == streamed and "five working days" in done["text"]
    assert Message.objects.get(pk=done["message_id"]).text == done["text"]


def test_empty_or_oversized_questions_are_refused(settings) -> None:
    bot = BotFactory()
    api = key_client(bot.organization)
    empty = api.post("/api/conversations/", {"bot": bot.pk, "text": "   "}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()["error"]["details"]["fields"]
    huge = api.post("/api/conversations/", {"bot": bot.pk, "text": "x" * (settings.NEO_MAX_MESSAGE_CHARS + 1)})
    assert huge.status_code == 400
    assert not Conversation.objects.exists()


def test_analytics_answer_for_the_keys_organization_and_check_their_filters() -> None:
    bot = BotFactory()
    conversation = ConversationFactory(bot=bot)
    MessageFactory(conversation=conversation, role="visitor")
    MessageFactory(conversation=conversation, role="bot", text="Five days.", confidence=0.9)
    ConversationFactory(bot=BotFactory())  # another organization's
    api = key_client(bot.organization, scopes=["analytics:read"])
    figures = api.get("/api/analytics/").json()
    assert figures["totals"]["conversations"] == 1
    assert figures["rates"]["deflection"] == 1.0
    assert len(figures["daily"]) == 30
    assert api.get("/api/analytics/", {"bot": bot.pk}).json()["filter"]["bot"] == bot.pk
    foreign = api.get("/api/analytics/", {"bot": ConversationFactory().bot_id})
    assert foreign.status_code == 400 and "bot" in foreign.json()["error"]["details"]["fields"]
    backwards = api.get("/api/analytics/", {"since": "2026-05-02", "until": "2026-05-01"})
    assert backwards.status_code == 400 and "until" in backwards.json()["error"]["details"]["fields"]
    assert key_client(bot.organization, scopes=["bots:read"]).get("/api/analytics/").status_code == 403


def test_the_schema_validates_with_no_warning(tmp_path) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/analytics/" in (tmp_path / "schema.yml").read_text()


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("0256-10-13T13:47:09-16:01", 200),  # an offset the database cannot hold, read in UTC
        ("0001-01-01T00:00:00+01:00", 400),  # before the first UTC time there is
        ("9999-12-31T23:59:59-01:00", 400),  # after the last
        ("yesterday", 400),
    ],
)
def test_times_are_read_in_utc_and_impossible_ones_are_a_400(since, expected) -> None:
    api = key_client(OrganizationFactory())
    response = api.get("/api/conversations/", {"since": since})
    assert response.status_code == expected
    if expected == 400:
        assert "since" in response.json()["error"]["details"]["fields"]


@pytest.mark.parametrize(("since", "until"), [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")])
def test_analytics_dates_out_of_range_are_a_400(since, until) -> None:
    api = key_client(OrganizationFactory())
    response = api.get("/api/analytics/", {"since": since, "until": until})
    assert response.status_code == 400 and "since" in response.json()["error"]["details"]["fields"]
