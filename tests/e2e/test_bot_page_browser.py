"""A bot's pages in a real headless Chromium: an owner creates a bot, gives it a persona
and thresholds, and talks to it in the test chat, the real widget on the bot's page."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from bots.models import Bot
from neo_support import rate_limits
from retrieval.services.documents import document_create_from_text
from retrieval.services.ingestion import documents_ingest_all
from tests.conftest import free_port
from tests.factories import KnowledgeBaseFactory, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROSES = "# Roses\n\n## Pruning\n\nPrune roses in late winter, just above an outward bud."


@contextmanager
def serving(settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The whole ASGI application (pages and the widget's websocket) served by uvicorn on a
    thread of this process, so it reads the test database; replies run on the in-process
    task pool (the caller's `in_process_tasks`), extractive (no model weights), as on a
    fresh install."""
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from neo_support.asgi import application

    settings.NEO_MODEL = "/nonexistent/model"
    rate_limits.rate_reset()
    port = free_port()
    app = ASGIStaticFilesHandler(application)  # the stylesheet, as the live_server fixture serves it
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(in_process_tasks, settings) -> Iterator[str]:
    with serving(settings) as url:
        yield url


def test_an_owner_creates_a_bot_sets_its_persona_and_talks_to_it_in_the_test_chat(server, page, tmp_path) -> None:
    owner = MembershipFactory(user__username="ola", role="owner")
    knowledge_base = KnowledgeBaseFactory(organization=owner.organization, name="Garden")
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Roses", text=ROSES, queue=False)]
    )

    page.goto(f"{server}/accounts/login/")
    page.fill("#id_login", "ola")
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard/")

    page.click("text=New bot")
    page.fill("#id_name", "Fern")
    page.fill("#id_instructions", "You are Fern, a gardener.")
    page.get_by_label("Garden").check()
    page.select_option("#id_answer_mode", "extractive")
    page.click("button:text-is('Create bot')")
    page.wait_for_selector("h1:text-is('Fern')")
    bot = Bot.objects.get(name="Fern")
    assert page.url == f"{server}/dashboard/bots/{bot.pk}/"
    assert list(bot.knowledge_bases.all()) == [knowledge_base]

    page.fill("#id_instructions", "You are Fern, a cheerful gardener. Keep answers short.")
    page.fill("#id_welcome_message", "Hi, I'm Fern. Ask me about roses!")
    page.click("#persona button[type=submit]")
    page.wait_for_selector("text=Saved.")
    bot.refresh_from_db()
    assert bot.instructions == "You are Fern, a cheerful gardener. Keep answers short."

    # A handoff threshold above the answer threshold is refused next to the field, as typed.
    page.fill("#id_answer_threshold", "0.2")
    page.fill("#id_handoff_threshold", "0.5")
    page.click("#confidence button[type=submit]")
    page.wait_for_selector("#confidence .errorlist")
    page.screenshot(path=str(tmp_path / "bot-page-error.png"), full_page=True)
    assert "cannot be above the answer threshold" in page.locator("#confidence").inner_text()
    assert page.input_value("#id_handoff_threshold") == "0.5"
    page.fill("#id_answer_threshold", "0")
    page.fill("#id_handoff_threshold", "0")  # always answer: the test asks one short question
    page.click("#confidence button[type=submit]")
    page.wait_for_selector("text=Saved.")
    bot.refresh_from_db()
    assert (bot.answer_threshold, bot.handoff_threshold) == (0.0, 0.0)

    # The theme: what the test chat shows is what every site embedding the snippet shows.
    page.fill("#id_accent", "#0A7D32")
    page.select_option("#id_position", "left")
    page.fill("#id_title", "Fern's garden desk")
    page.click("#theme button[type=submit]")
    page.wait_for_selector("#theme .notice:text('Saved.')")
    bot.refresh_from_db()
    assert bot.theme == {"accent": "#0a7d32", "position": "left", "title": "Fern's garden desk"}
    tag = page.locator("#test-chat-widget")
    assert tag.get_attribute("data-color") is None and tag.get_attribute("data-position") is None
    assert tag.get_attribute("data-test-chat") is not None
    launcher = page.locator("[data-neo-support] .launcher")
    page.wait_for_function(  # the saved colour, from the server (nothing on the script tag says it)
        "() => { const l = document.querySelector('[data-neo-support]')?.shadowRoot.querySelector('.launcher');"
        " return l && getComputedStyle(l).backgroundColor === 'rgb(10, 125, 50)'; }"
    )
    box = launcher.bounding_box()
    assert box is not None and box["x"] < 100  # bottom left

    page.click("#open-test-chat:enabled")
    page.wait_for_selector("[data-neo-support] .panel:not([hidden])")
    welcome = page.locator("[data-neo-support] .msg.bot").first
    welcome.wait_for(timeout=30_000)
    assert welcome.inner_text() == "Hi, I'm Fern. Ask me about roses!"
    assert page.locator("[data-neo-support] header h2").inner_text() == "Fern's garden desk"

    page.fill("[data-neo-support] textarea", "When should I prune roses?")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-neo-support] .msg.bot .sources", timeout=120_000)
    assert "late winter" in page.locator("[data-neo-support] .msg.bot").last.inner_text()
    page.screenshot(path=str(tmp_path / "bot-page.png"), full_page=True)
    # A test chat is marked as one (left out of analytics).
    assert list(bot.conversations.values_list("is_test", flat=True)) == [True]


def test_a_bot_on_a_second_served_model_shows_it_and_the_api_round_trips_it(
    in_process_tasks, settings, page, tiny_model_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Issue 24: the owner picks the deployment's second model in the persona section; the
    page, the REST API and the cost table all name it, and the API switches it back."""
    from bots.models import Message
    from neo_support.model_queues import generation_queue
    from neo_support.services import api_key_create
    from workers.generation.loading import holders_reset

    owner = MembershipFactory(user__username="ola", role="owner")
    knowledge_base = KnowledgeBaseFactory(organization=owner.organization, name="Garden")
    documents_ingest_all(
        documents=[document_create_from_text(knowledge_base=knowledge_base, title="Roses", text=ROSES, queue=False)]
    )
    bot = Bot.objects.create(
        organization=owner.organization, name="Fern", answer_threshold=0, handoff_threshold=0,
        generation={"temperature": 0, "top_p": 0.9, "max_new_tokens": 8, "repetition_penalty": 1.15},
    )  # fmt: skip
    bot.knowledge_bases.add(knowledge_base)
    _, raw_key = api_key_create(organization=owner.organization, name="browser")
    api_headers = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
    neo, llama = str(tiny_model_dir("gpt_neo")), str(tiny_model_dir("llama"))
    with serving(settings) as server:
        settings.NEO_MODEL, settings.NEO_MODELS = neo, [llama]
        settings.NEO_DEVICE, settings.NEO_DTYPE = "cpu", "float32"
        holders_reset()
        try:
            page.goto(f"{server}/accounts/login/")
            page.fill("#id_login", "ola")
            page.fill("#id_password", "correct horse battery staple")
            page.click("button[type=submit]")
            page.wait_for_url(f"{server}/dashboard/")

            bot_page = f"{server}/dashboard/bots/{bot.pk}/"
            page.goto(bot_page)
            page.select_option("#id_base_model", llama)
            page.click("#persona button[type=submit]")
            page.wait_for_selector("#persona .notice:text('Saved.')")
            bot.refresh_from_db()
            assert bot.base_model == llama
            said = page.locator("#answering-model").inner_text()
            assert llama in said and neo not in said and "loads with the first question" in said

            read = page.request.get(f"{server}/api/bots/{bot.pk}/", headers=api_headers).json()
            assert read["base_model"] == read["answering_model"] == llama

            page.click("#open-test-chat:enabled")
            page.wait_for_selector("[data-neo-support] .panel:not([hidden])")
            page.fill("[data-neo-support] textarea", "When should I prune roses?")
            page.keyboard.press("Enter")
            deadline = time.monotonic() + 120
            while not Message.objects.filter(conversation__bot=bot, role="bot", status="done").exists():
                assert time.monotonic() < deadline, "no reply was written"
                time.sleep(0.5)
            reply = Message.objects.get(conversation__bot=bot, role="bot", status="done")
            assert reply.timings["mode"] == "generative" and reply.timings["model"] == llama

            page.goto(bot_page)
            said = page.locator("#answering-model").inner_text()
            assert llama in said and "cpu, float32" in said  # loaded by the reply
            [cost_row] = page.locator("table.answer-costs tbody tr").all()
            assert cost_row.locator("td").first.inner_text() == llama
            page.screenshot(path=str(tmp_path / "bot-page-second-model.png"), full_page=True)

            changed = page.request.patch(f"{server}/api/bots/{bot.pk}/", headers=api_headers, data={"base_model": ""})
            assert changed.status == 200 and changed.json()["answering_model"] == neo
            refused = page.request.patch(
                f"{server}/api/bots/{bot.pk}/", headers=api_headers, data={"base_model": "org/not-served"}
            )
            assert refused.status == 400 and llama in refused.json()["error"]["details"]["fields"]["base_model"][0]
            page.goto(bot_page)
            assert neo in page.locator("#answering-model").inner_text()
            assert page.input_value("#id_base_model") == ""

            page.goto(f"{server}/dashboard/settings/")  # every served model, each with its queue
            default_listed, second_listed = page.locator("#model .served-model").all_inner_texts()
            assert neo in default_listed and "(the default)" in default_listed
            assert llama in second_listed and "loaded · cpu float32" in second_listed
            assert generation_queue(llama, default_model=neo) in second_listed
        finally:
            holders_reset()
