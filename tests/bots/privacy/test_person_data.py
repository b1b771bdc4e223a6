"""A person's data: found by email, visitor id or ticket, exported as one zip, erased
everywhere (rows, files, event log, webhook payloads, training data), resumably."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import zipfile

import pytest

from bots.models import Conversation, ErasureStatus, Message, PersonErasure
from bots.privacy.erasure import person_erasure_run, person_erasure_start
from bots.privacy.selectors import PersonKey, PersonKeyInvalid, person_find
from tests.bots.privacy.person_data import (
    ATTACHMENT_BYTES,
    BOT_TEXT,
    CHAT_TEXT,
    EMAIL,
    EMAIL_TEXT,
    FEEDBACK_TEXT,
    NAME,
    OTHER_TEXT,
    VISITOR,
    all_traces,
    seed_person,
)
from tests.conftest import ROOT, clean_env, database_url
from tests.factories import BotFactory, MembershipFactory


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "value"), [("email", EMAIL.upper()), ("visitor_id", VISITOR), ("ticket", "email")])
def test_a_person_is_found_by_email_visitor_id_or_ticket(media, kind, value) -> None:
    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    if kind == "ticket":
        value = Conversation.objects.get(channel="email").ticket.token
    person = person_find(organization=organization, key=PersonKey.parse(kind, value))
    assert person.conversation_ids == set(Conversation.objects.exclude(pk=seeded.other.pk).values_list("pk", flat=True))
    assert EMAIL in person.emails and NAME in person.names


@pytest.mark.django_db
def test_another_organization_finds_nobody(media) -> None:
    seed_person(BotFactory())
    person = person_find(organization=BotFactory().organization, key=PersonKey.parse("email", EMAIL))
    assert not person.found


@pytest.mark.parametrize(("kind", "value"), [("email", "not an address"), ("email", " "), ("phone", "123")])
def test_what_cannot_identify_anybody_is_refused(kind, value) -> None:
    with pytest.raises(PersonKeyInvalid):
        PersonKey.parse(kind, value)


@pytest.mark.django_db
def test_the_owner_downloads_everything_held_in_one_archive(client, media) -> None:
    seeded = seed_person(BotFactory())
    owner = MembershipFactory(organization=seeded.bot.organization, role="owner").user
    client.force_login(owner)
    response = client.get("/dashboard/privacy/", {"kind": "email", "q": EMAIL})
    assert response.status_code == 200 and b"Download their data" in response.content
    response = client.get("/dashboard/privacy/export.zip", {"kind": "email", "q": EMAIL})
    assert response.status_code == 200 and response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    conversations = json.loads(archive.read("conversations.json"))
    texts = [message["text"] for conversation in conversations for message in conversation["messages"]]
    assert {CHAT_TEXT, BOT_TEXT} <= set(texts) and any(EMAIL_TEXT in text for text in texts)
    ticket = next(c["ticket"] for c in conversations if c["ticket"])
    assert ticket["requester_email"] == EMAIL and ticket["requester_name"] == NAME
    assert any(f["comment"] == FEEDBACK_TEXT for c in conversations for m in c["messages"] for f in m["feedback"])
    assert any(m["moderation"] for c in conversations for m in c["messages"])
    assert {"email": EMAIL, "name": NAME} in [c["identify_data"] for c in conversations]
    attachment = next(name for name in names if name.startswith("attachments/"))
    assert archive.read(attachment) == ATTACHMENT_BYTES
    deliveries = json.loads(archive.read("webhook_deliveries.json"))
    assert {"ticket.created", "message.created"} <= {d["event"] for d in deliveries}
    examples = json.loads(archive.read("training_examples.json"))
    assert examples and all(e["model_version"] == "v1" for e in examples)
    assert OTHER_TEXT not in json.dumps(conversations + examples)
    assert json.loads(archive.read("person.json"))["emails"] == [EMAIL]


@pytest.mark.django_db
def test_an_export_streams_thousands_of_messages_without_holding_them(client, media) -> None:
    import tracemalloc

    bot = BotFactory()
    conversation = Conversation.objects.create(bot=bot, visitor_id=VISITOR, visitor_info={"email": EMAIL})
    Message.objects.bulk_create(
        [Message(conversation=conversation, role="visitor", text=f"{n} " + "x" * 4000) for n in range(3000)]
    )
    client.force_login(MembershipFactory(organization=bot.organization, role="owner").user)
    response = client.get("/dashboard/privacy/export.zip", {"kind": "visitor_id", "q": VISITOR})
    tracemalloc.start()
    size = sum(len(piece) for piece in response.streaming_content)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 0
    # Twelve megabytes of text went through; far less was held at once.
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.django_db
def test_an_admin_or_agent_may_not_see_a_persons_data(client, media) -> None:
    seeded = seed_person(BotFactory())
    for role in ("admin", "agent", "viewer"):
        client.force_login(MembershipFactory(organization=seeded.bot.organization, role=role).user)
        assert client.get("/dashboard/privacy/", {"kind": "email", "q": EMAIL}).status_code == 403
        assert client.post("/dashboard/privacy/erase", {"kind": "email", "q": EMAIL}).status_code == 403


@pytest.mark.django_db
def test_erasing_an_unknown_person_reports_nothing_found_and_changes_nothing(media) -> None:
    seeded = seed_person(BotFactory())
    before = Message.objects.count()
    started = person_erasure_start(
        organization=seeded.bot.organization, key=PersonKey.parse("email", "nobody@example.com")
    )
    assert not started.found
    assert PersonErasure.objects.count() == 0 and Message.objects.count() == before


@pytest.mark.django_db
def test_two_erasures_of_the_same_person_are_one(media) -> None:
    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    first = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    second = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    assert first.created and not second.created and first.erasure == second.erasure
    assert person_erasure_run(erasure=first.erasure) == ErasureStatus.DONE
    counts = PersonErasure.objects.get().counts
    assert person_erasure_run(erasure=first.erasure) == ErasureStatus.DONE  # again: nothing more
    assert PersonErasure.objects.get().counts == counts


@pytest.mark.django_db
def test_an_erasure_leaves_no_trace_and_marks_the_tuned_version(media) -> None:
    seeded = seed_person(BotFactory())
    ids = list(person_find(organization=seeded.bot.organization, key=PersonKey.parse("email", EMAIL)).conversation_ids)
    started = person_erasure_start(organization=seeded.bot.organization, key=PersonKey.parse("email", EMAIL))
    assert person_erasure_run(erasure=started.erasure) == ErasureStatus.DONE
    assert all_traces(seeded, ids) == []
    erasure = PersonErasure.objects.get()
    assert list(erasure.model_versions.all()) == [seeded.version] and erasure.plan == {}
    assert Message.objects.filter(text=OTHER_TEXT).exists()  # someone else's data stays


WORKER = """
import os, signal, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")
django.setup()
from bots.privacy import deletion, erasure
from bots.privacy.tasks import erase_person
deletion.BATCH = 1  # a batch per row, so the kill lands between committed batches
stop_at, action = sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "kill"
def stop(erasure_row, step, rows):
    if step != stop_at:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if rows == 1:  # "pause": say where it is, then hold the erasure a while
        print("paused", flush=True)
        import time; time.sleep(6)
erasure.BATCH_HOOKS.append(stop)
print(erase_person(int(sys.argv[1])))
"""


def run_worker(erasure_id: int, stop_at: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WORKER, str(erasure_id), stop_at],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_erasure_is_finished_cleanly_by_the_rerun(media, redis_url) -> None:
    env = clean_env(DATABASE_URL=database_url(), REDIS_URL=redis_url, MEDIA_ROOT=str(media))
    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    ids = list(person_find(organization=organization, key=PersonKey.parse("email", EMAIL)).conversation_ids)
    erasure = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL)).erasure
    killed = run_worker(erasure.pk, "messages", env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    erasure.refresh_from_db()
    assert erasure.status == ErasureStatus.RUNNING and "tickets" in erasure.steps_done
    assert "messages" not in erasure.steps_done and erasure.counts["messages"] == 1
    assert Message.objects.filter(conversation_id__in=ids).exists()  # half way: some rows left
    # The same person asked for again meanwhile: still the one erasure.
    again = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    assert again.erasure == erasure and not again.created
    rerun = run_worker(erasure.pk, "never", env)
    assert rerun.returncode == 0 and rerun.stdout.strip() == "done", rerun.stderr[-2000:]
    erasure.refresh_from_db()
    assert erasure.status == ErasureStatus.DONE and erasure.counts["files"] == 1
    assert all_traces(seeded, ids) == []
    assert list(erasure.model_versions.all()) == [seeded.version]


@pytest.mark.django_db
def test_asking_again_resumes_a_failed_erasure_instead_of_starting_another(media) -> None:
    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    first = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL)).erasure
    PersonErasure.objects.filter(pk=first.pk).update(status=ErasureStatus.FAILED, error="messages: disk gone")
    again = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    assert again.erasure == first and not again.created and again.erasure.status == ErasureStatus.QUEUED
    assert person_erasure_run(erasure=again.erasure) == ErasureStatus.DONE
    assert PersonErasure.objects.count() == 1


@pytest.mark.django_db
def test_the_model_page_flags_a_version_trained_on_an_erased_person(client, media) -> None:
    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    started = person_erasure_start(organization=organization, key=PersonKey.parse("email", EMAIL))
    person_erasure_run(erasure=started.erasure)
    client.force_login(MembershipFactory(organization=organization, role="admin").user)
    page = client.get(f"/dashboard/bots/{seeded.bot.pk}/model/").content.decode()
    assert "Trained on data of 1 erased" in page and "Tune a new version" in page


@pytest.mark.django_db
def test_exports_erasures_and_retention_changes_are_in_the_audit_log(client, media) -> None:
    from bots.privacy.retention import retention_policy_update
    from neo_support.models import AuditEntry

    seeded = seed_person(BotFactory())
    organization = seeded.bot.organization
    owner = MembershipFactory(organization=organization, role="owner").user
    client.force_login(owner)
    b"".join(client.get("/dashboard/privacy/export.zip", {"kind": "email", "q": EMAIL}).streaming_content)
    client.post("/dashboard/privacy/erase", {"kind": "email", "q": "nobody@example.com"})
    client.post("/dashboard/privacy/erase", {"kind": "email", "q": EMAIL})
    retention_policy_update(organization=organization, days={"tickets": 400}, by=owner)
    retention_policy_update(organization=organization, days={"tickets": 400}, by=owner)  # no change: not recorded
    entries = list(
        AuditEntry.objects.filter(organization=organization, action__startswith="person.").order_by("pk")
    ) + list(AuditEntry.objects.filter(organization=organization, action="retention.update"))
    assert [(entry.action, entry.actor_id) for entry in entries] == [
        ("person.export", owner.pk),
        ("person.erase", owner.pk),
        ("retention.update", owner.pk),
    ]
    assert entries[2].before["tickets"] is None and entries[2].after["tickets"] == 400
    assert EMAIL not in repr([(entry.before, entry.after, entry.target_label) for entry in entries])


@pytest.mark.django_db
def test_the_page_refuses_what_identifies_nobody_and_says_when_nothing_is_held(client, media) -> None:
    client.force_login(MembershipFactory(role="owner").user)
    refused = client.get("/dashboard/privacy/", {"kind": "email", "q": "not-an-address"})
    assert refused.status_code == 400 and b"not an email address" in refused.content
    nothing = client.get("/dashboard/privacy/", {"kind": "visitor_id", "q": "visitor-nobody"})
    assert nothing.status_code == 200 and b"Nothing is held about that person." in nothing.content
    assert client.get("/dashboard/privacy/export.zip", {"kind": "email", "q": "nobody@example.com"}).status_code == 404
    assert client.get("/dashboard/privacy/erasures.json").json() == {"erasures": []}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_on_a_running_erasure_does_nothing(media, redis_url) -> None:
    env = clean_env(DATABASE_URL=database_url(), REDIS_URL=redis_url, MEDIA_ROOT=str(media))
    seeded = seed_person(BotFactory())
    erasure = person_erasure_start(organization=seeded.bot.organization, key=PersonKey.parse("email", EMAIL)).erasure
    first = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(erasure.pk), "messages", "pause"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "paused"
        assert person_erasure_run(erasure=erasure) == "busy"  # the lock is held: no work twice
        assert first.wait(timeout=120) == 0 and first.stdout.read().strip() == "done"
    finally:
        if first.poll() is None:
            first.kill()
    erasure.refresh_from_db()
    messages = Message.objects.filter(conversation__bot=seeded.bot).count()
    assert erasure.status == ErasureStatus.DONE and messages == 2  # the other visitor's two
    assert erasure.counts["messages"] == 3 and erasure.counts["conversations"] == 2
