"""The bot's model page: start a tuning run, watch it, compare, deploy, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.models import ModelVersion, ModelVersionStatus
from tests.bots.tuning.test_tuning import history
from tests.factories import BotFactory, MembershipFactory

pytestmark = pytest.mark.django_db

METRICS = {
    "base": {"perplexity": 310.2, "groundedness": 0.5, "moderation_pass": 1.0, "overlap": 0.21, "answers": 6},
    "tuned": {"perplexity": 120.7, "groundedness": 0.61, "moderation_pass": 1.0, "overlap": 0.44, "answers": 6},
    "regressions": [],
}


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    return membership


def test_a_run_is_started_from_the_page_with_its_settings(client, admin, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    queued: list[tuple[object, ...]] = []
    monkeypatch.setattr("bots.tuning.services.enqueue", lambda name, *args: queued.append((name, *args)))
    bot = BotFactory(organization=admin.organization, name="Tally")
    url = f"/dashboard/bots/{bot.pk}/model/"
    page = client.get(url).content.decode()
    assert "the base model" in page and "No tuned versions yet." in page

    refused = client.post(url, {"action": "start"})
    assert refused.status_code == 400 and "Tally has 0 usable answers" in refused.content.decode()
    history(bot, conversations=55)
    bad = client.post(url, {"action": "start", "epochs": "lots"})
    assert bad.status_code == 400 and "Epochs must be a number." in bad.content.decode()
    assert not ModelVersion.objects.exists()

    started = client.post(url, {"action": "start", "epochs": "2", "rank": "4", "learning_rate": "0.001"}, follow=True)
    version = ModelVersion.objects.get(bot=bot)
    assert (version.number, version.status, version.created_by) == (1, ModelVersionStatus.QUEUED, admin.user)
    assert (version.config["epochs"], version.config["rank"], version.config["learning_rate"]) == (2.0, 4, 0.001)
    assert queued == [("workers.tasks.train_model_version", version.pk)]
    assert "Tuning v1 is queued." in started.content.decode()
    again = client.post(url, {"action": "start"})
    assert again.status_code == 400 and "already being tuned" in again.content.decode()


def test_progress_metrics_deploy_and_rollback(client, admin, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    settings.NEO_MODEL = "tiny"  # the base model the versions below were tuned on: they answer
    bot = BotFactory(organization=admin.organization, name="Tally")
    running = ModelVersion.objects.create(
        bot=bot, number=2, base_model="tiny", status=ModelVersionStatus.TRAINING,
        progress={"step": 30, "total_steps": 120, "loss": 2.31, "eta_seconds": 61.0},
        config={"epochs": 3, "rank": 8, "learning_rate": 0.0005},
    )  # fmt: skip
    ready = ModelVersion.objects.create(
        bot=bot, number=1, base_model="tiny", status=ModelVersionStatus.READY, metrics=METRICS,
        examples={"train_agent": 54, "validation_agent": 6}, config={"epochs": 3, "rank": 8, "learning_rate": 0.0005},
    )  # fmt: skip
    url = f"/dashboard/bots/{bot.pk}/model/"
    page = client.get(url).content.decode()
    assert 'Step <span class="step">30</span> of 120' in page and "data-running" in page
    assert "<td>Validation perplexity (lower is better)</td><td>310.2</td><td>120.7</td>" in page
    assert client.get(f"{url}status.json").json()["versions"][0]["progress"]["step"] == 30

    assert client.post(url, {"action": "deploy", "version": ready.pk}).status_code == 302
    bot.refresh_from_db()
    assert bot.model_version == ready
    assert "answering now" in client.get(url).content.decode()
    not_ready = client.post(url, {"action": "deploy", "version": running.pk})
    assert not_ready.status_code == 400 and "only a ready version can answer" in not_ready.content.decode()
    assert client.post(url, {"action": "cancel", "version": running.pk}).status_code == 302
    assert ModelVersion.objects.get(pk=running.pk).cancel_requested
    for junk in ("abc", "", "99999999999999999999"):
        assert client.post(url, {"action": "deploy", "version": junk}).status_code in (400, 404)
    assert client.post(url, {"action": "rollback"}).status_code == 302
    bot.refresh_from_db()
    assert bot.model_version is None

    dataset = tmp_path / ready.adapter_dir / "dataset.jsonl"
    dataset.parent.mkdir(parents=True)
    dataset.write_text('{"prompt": "p", "answer": " a"}\n')
    download = client.get(f"{url}versions/{ready.pk}/dataset.jsonl")
    assert download.status_code == 200 and b"".join(download.streaming_content) == dataset.read_bytes()
    assert client.get(f"{url}versions/{running.pk}/dataset.jsonl").status_code == 404


def test_viewers_read_the_page_and_change_nothing(client) -> None:  # type: ignore[no-untyped-def]
    viewer = MembershipFactory(role="viewer")
    client.force_login(viewer.user)
    bot = BotFactory(organization=viewer.organization)
    ready = ModelVersion.objects.create(bot=bot, number=1, base_model="tiny", status=ModelVersionStatus.READY)
    page = client.get(f"/dashboard/bots/{bot.pk}/model/").content.decode()
    assert "Tune on this bot" not in page and "Deploy v1" not in page
    assert client.post(f"/dashboard/bots/{bot.pk}/model/", {"action": "deploy", "version": ready.pk}).status_code == 403
    bot.refresh_from_db()
    assert bot.model_version is None
