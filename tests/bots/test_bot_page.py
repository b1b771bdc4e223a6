"""A bot's dashboard pages: creating a bot, its settings in sections, the embed code and
test chat, deleting it, and who may do what."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from bots.models import Bot, Conversation
from bots.services import bot_update
from tests.factories import BotFactory, ConversationFactory, KnowledgeBaseFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PERSONA = {
    "section": "persona",
    "name": "Pip",
    "instructions": "You are Pip, cheerful and brief.",
    "answer_mode": "extractive",
    "welcome_message": "Hello from Pip!",
    "starter_questions": "How do refunds work?\n\n  Where is my order?  \nHow do refunds work?",
    "temperature": "0.7",
    "top_p": "0.95",
    "max_new_tokens": "300",
    "repetition_penalty": "1.2",
}


@pytest.fixture
def admin(client):
    membership = MembershipFactory(role="admin")
    client.force_login(membership.user)
    return membership


@pytest.fixture
def bot(admin):
    return BotFactory(organization=admin.organization, name="Helper", generation={"temperature": 0.3, "seed": 7})


def url(bot: Bot) -> str:
    return f"/dashboard/bots/{bot.pk}/"


# Creating a bot


def test_an_admin_creates_a_bot_with_its_organizations_knowledge_bases(client, admin) -> None:
    knowledge_base = KnowledgeBaseFactory(organization=admin.organization, name="Billing")
    assert b"/dashboard/bots/new" in client.get("/dashboard/").content
    page = client.get("/dashboard/bots/new")
    assert page.status_code == 200 and b"Billing" in page.content

    response = client.post(
        "/dashboard/bots/new",
        {
            "name": "Pip",
            "instructions": "Be brief.",
            "knowledge_bases": [knowledge_base.pk],
            "answer_mode": "extractive",
        },
    )
    bot = Bot.objects.get(name="Pip")
    assert response.status_code == 302 and response["Location"] == url(bot)
    assert bot.organization == admin.organization
    assert (bot.instructions, bot.answer_mode) == ("Be brief.", "extractive")
    assert list(bot.knowledge_bases.all()) == [knowledge_base]


@pytest.fixture
def no_model(settings, tmp_path, monkeypatch):
    """Tasks in this process, and NEO_MODEL naming weights that are not on this machine."""
    from workers.generation import loading

    settings.NEO_TASKS_IN_PROCESS = True
    settings.NEO_MODEL = str(tmp_path / "no-model-here")
    loading.holder.reset()
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a dashboard page must not load the model"))
    yield
    loading.holder.reset()


def test_without_a_model_a_new_bot_defaults_to_quoting_and_the_form_says_how_to_fix_it(client, admin, no_model) -> None:
    page = client.get("/dashboard/bots/new")
    form = page.context["form"]
    assert form["answer_mode"].value() == "extractive"
    assert b'<option value="extractive" selected>' in page.content
    help_text = form.fields["answer_mode"].help_text
    assert "not on this server" in help_text and "manage.py download_model" in help_text


def test_with_the_model_loaded_a_new_bot_defaults_to_generating(client, admin, settings, tiny_neo) -> None:
    from workers.generation.loading import holder

    settings.NEO_TASKS_IN_PROCESS = True
    holder.get()
    page = client.get("/dashboard/bots/new")
    assert page.context["form"]["answer_mode"].value() == "generative"
    assert b'<option value="generative" selected>' in page.content
    assert "download_model" not in page.context["form"].fields["answer_mode"].help_text


def test_with_the_model_on_disk_but_not_loaded_yet_a_new_bot_defaults_to_generating(
    client, admin, settings, tiny_neo, monkeypatch
) -> None:
    from workers.generation import loading

    settings.NEO_TASKS_IN_PROCESS = True
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a dashboard page must not load the model"))
    assert client.get("/dashboard/bots/new").context["form"]["answer_mode"].value() == "generative"


@pytest.mark.parametrize(("reported", "on_disk", "missing"), [
    ("loaded", False, False),
    ("unavailable", True, True),
    ("unknown", True, False),  # no generation worker reported yet: the local cache decides
    ("unknown", False, True),
])  # fmt: skip
def test_with_workers_apart_the_form_goes_by_their_report_then_the_local_cache(
    settings, tmp_path, tiny_neo_dir, monkeypatch, reported, on_disk, missing
) -> None:
    from bots.forms import model_missing

    settings.NEO_MODEL = str(tiny_neo_dir if on_disk else tmp_path / "absent")
    monkeypatch.setattr("neo_support.health.check_model", lambda: {"ok": True, "state": reported})
    assert model_missing() is missing


def test_without_a_model_the_persona_section_says_answers_are_quoted(client, bot, no_model) -> None:
    help_text = client.get(url(bot)).context["forms"]["persona"].fields["answer_mode"].help_text
    assert "quoted" in help_text and "manage.py download_model" in help_text


def test_creating_a_bot_with_another_tenants_knowledge_base_is_refused_and_keeps_what_was_typed(client, admin) -> None:
    foreign = KnowledgeBaseFactory(name="Not yours")
    response = client.post(
        "/dashboard/bots/new",
        {"name": "Pip", "instructions": "Be brief.", "knowledge_bases": [foreign.pk], "answer_mode": "generative"},
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert b'value="Pip"' in response.content and b"Be brief." in response.content
    assert b"Not yours" not in response.content
    assert not Bot.objects.exists()


def test_a_bot_needs_a_name(client, admin) -> None:
    response = client.post("/dashboard/bots/new", {"name": "", "instructions": "Kept", "answer_mode": "generative"})
    assert response.status_code == 200 and b"This field is required" in response.content
    assert b"Kept" in response.content
    assert not Bot.objects.exists()


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_agents_and_viewers_cannot_create_bots(client, role) -> None:
    membership = MembershipFactory(role=role)
    client.force_login(membership.user)
    assert b"/dashboard/bots/new" not in client.get("/dashboard/").content
    assert client.get("/dashboard/bots/new").status_code == 403
    assert client.post("/dashboard/bots/new", {"name": "Pip", "answer_mode": "generative"}).status_code == 403
    assert not Bot.objects.exists()


# Settings, section by section


def test_the_page_shows_every_section_the_embed_code_and_the_test_chat(client, bot) -> None:
    page = client.get(url(bot))
    assert page.status_code == 200
    for section in ("persona", "confidence", "moderation", "origins", "theme", "tickets", "embed", "delete"):
        assert f'id="{section}"'.encode() in page.content
    assert f"data-bot-key=&quot;{bot.public_key}&quot;".encode() in page.content  # the embed code, as text
    assert f'src="http://testserver/widget.js" data-bot-key="{bot.public_key}"'.encode() in page.content
    # The test chat is the real widget, marked as a test, taking its look from the saved
    # theme as every site does (no colour or corner of its own on the tag).
    tag = re.search(rb'<script id="test-chat-widget"[^>]*>', page.content)
    assert tag is not None and b"data-test-chat" in tag.group() and b"data-color" not in tag.group()


def test_persona_and_answers_are_saved_and_unknown_generation_keys_kept(client, admin, bot) -> None:
    mine = KnowledgeBaseFactory(organization=admin.organization)
    response = client.post(url(bot), {**PERSONA, "knowledge_bases": [mine.pk]})
    assert response.status_code == 302 and response["Location"].endswith("#persona")
    bot.refresh_from_db()
    assert bot.name == "Pip" and bot.instructions == "You are Pip, cheerful and brief."
    assert bot.answer_mode == "extractive" and bot.welcome_message == "Hello from Pip!"
    assert bot.starter_questions == ["How do refunds work?", "Where is my order?"]
    assert bot.generation == {
        "temperature": 0.7,
        "top_p": 0.95,
        "max_new_tokens": 300,
        "repetition_penalty": 1.2,
        "seed": 7,
    }
    assert list(bot.knowledge_bases.all()) == [mine]
    page = client.get(url(bot))
    assert b"Saved." in page.content and b"Where is my order?" in page.content


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "", b"This field is required"),
        ("temperature", "3", b"less than or equal to 2"),
        ("top_p", "0", b"greater than or equal to 0.01"),
        ("max_new_tokens", "5000", b"less than or equal to 1024"),
        ("repetition_penalty", "abc", b"Enter a number"),
        ("starter_questions", "\n".join(f"Question {n}" for n in range(11)), b"At most 10 questions"),
    ],
)
def test_invalid_persona_input_shows_the_error_keeps_what_was_typed_and_saves_nothing(
    client, bot, field, value, error
) -> None:
    response = client.post(url(bot), {**PERSONA, field: value})
    assert response.status_code == 200
    assert error in response.content
    assert b"You are Pip, cheerful and brief." in response.content  # what was typed in other fields
    assert b'aria-invalid="true"' in response.content
    bot.refresh_from_db()
    assert bot.name == "Helper" and bot.instructions == "" and bot.generation == {"temperature": 0.3, "seed": 7}


def test_another_tenants_knowledge_base_is_refused(client, admin, bot) -> None:
    mine = KnowledgeBaseFactory(organization=admin.organization)
    bot.knowledge_bases.add(mine)
    foreign = KnowledgeBaseFactory()
    response = client.post(url(bot), {**PERSONA, "knowledge_bases": [foreign.pk]})
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    bot.refresh_from_db()
    assert bot.name == "Helper" and list(bot.knowledge_bases.all()) == [mine]


def test_the_service_refuses_another_tenants_knowledge_base_too(bot) -> None:
    with pytest.raises(ValueError, match="another organization"):
        bot_update(bot=bot, name="Pip", knowledge_bases=[KnowledgeBaseFactory()])
    assert bot.name == "Helper"
    bot.refresh_from_db()
    assert bot.name == "Helper" and not bot.knowledge_bases.exists()


def test_the_service_validates_the_threshold_ordering(bot) -> None:
    with pytest.raises(ValidationError):
        bot_update(bot=bot, answer_threshold=0.2, handoff_threshold=0.4)
    assert (bot.answer_threshold, bot.handoff_threshold) == (0.65, 0.25)


def test_confidence_thresholds_are_saved(client, bot) -> None:
    response = client.post(url(bot), {"section": "confidence", "answer_threshold": "0.6", "handoff_threshold": "0.6"})
    assert response.status_code == 302
    bot.refresh_from_db()
    assert (bot.answer_threshold, bot.handoff_threshold) == (0.6, 0.6)


@pytest.mark.parametrize(
    ("answer", "handoff", "error"),
    [
        ("0.3", "0.4", b"cannot be above the answer threshold"),
        ("1.5", "0.2", b"less than or equal to 1"),
        ("0.5", "-0.1", b"greater than or equal to 0"),
    ],
)
def test_bad_thresholds_are_a_form_error_and_nothing_is_saved(client, bot, answer, handoff, error) -> None:
    response = client.post(
        url(bot), {"section": "confidence", "answer_threshold": answer, "handoff_threshold": handoff}
    )
    assert response.status_code == 200 and error in response.content
    assert f'value="{answer}"'.encode() in response.content and f'value="{handoff}"'.encode() in response.content
    bot.refresh_from_db()
    assert (bot.answer_threshold, bot.handoff_threshold) == (0.65, 0.25)


MODERATION = {
    "section": "moderation",
    "blocklist": "darn\nheck\n",
    "allowlist": "kill the process",
    "blocklist_action": "flag",
    "pii": "off",
    "toxicity": "flag",
    "injection": "block",
    "grounding": "off",
    "safe_reply": "Let me find a person for you.",
}


def test_the_moderation_policy_is_saved_as_the_pipeline_reads_it_and_unknown_keys_are_kept(client, bot) -> None:
    from workers.moderation.pipeline import Policy
    from workers.moderation.verdicts import Action

    bot.moderation_policy = {"blocklist": ["old"], "custom_rule": {"x": 1}, "safe_reply": "Old reply"}
    bot.save()
    response = client.post(url(bot), MODERATION)
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.moderation_policy == {
        "blocklist": ["darn", "heck"],
        "allowlist": ["kill the process"],
        "blocklist_action": "flag",
        "pii": "off",
        "toxicity": "flag",
        "injection": "block",
        "grounding": "off",
        "safe_reply": "Let me find a person for you.",
        "custom_rule": {"x": 1},
    }
    policy = Policy.from_bot(bot.moderation_policy)
    assert policy.blocklist_action == Action.FLAG and policy.pii is None and policy.toxicity == Action.FLAG
    assert policy.grounding is False and policy.safe_reply == "Let me find a person for you."

    client.post(url(bot), {**MODERATION, "safe_reply": ""})
    bot.refresh_from_db()
    assert "safe_reply" not in bot.moderation_policy and bot.moderation_policy["custom_rule"] == {"x": 1}


def test_the_moderation_form_shows_the_policy_in_force(client, bot) -> None:
    bot.moderation_policy = {"pii": "FLAG", "toxicity": "nonsense", "blocklist": ["darn"]}
    bot.save()
    form = client.get(url(bot)).context["forms"]["moderation"]
    assert form.initial["pii"] == "flag"
    assert form.initial["toxicity"] == "block"  # what Policy.from_bot makes of an unknown value
    assert form.initial["blocklist"] == "darn" and form.initial["safe_reply"] == ""


def test_the_allowlist_help_explains_it_with_an_example_rather_than_an_instruction(client, bot) -> None:
    help_text = client.get(url(bot)).context["forms"]["moderation"].fields["allowlist"].help_text
    assert "never blocked" in help_text and "such as “kill the process”" in help_text
    assert "(kill the process)" not in help_text


def test_an_invalid_moderation_choice_saves_nothing(client, bot) -> None:
    bot.moderation_policy = {"custom_rule": 1}
    bot.save()
    response = client.post(url(bot), {**MODERATION, "pii": "shout"})
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert b"kill the process" in response.content
    bot.refresh_from_db()
    assert bot.moderation_policy == {"custom_rule": 1}


def test_allowed_origins_are_normalised_and_a_bad_one_is_refused(client, bot) -> None:
    response = client.post(
        url(bot),
        {
            "section": "origins",
            "allowed_origins": "https://Shop.example/\n\nhttps://*.example.org\nhttps://shop.example",
        },
    )
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example", "https://*.example.org"]

    refused = client.post(url(bot), {"section": "origins", "allowed_origins": "shop.example/page"})
    assert refused.status_code == 200 and b"is not a site origin" in refused.content
    assert b"shop.example/page" in refused.content
    bot.refresh_from_db()
    assert bot.allowed_origins == ["https://shop.example", "https://*.example.org"]


def test_the_theme_is_saved_and_unknown_theme_keys_kept(client, bot) -> None:
    bot.theme = {"accent": "#2563eb", "position": "right", "title": "Ask", "font": "serif"}
    bot.save()
    response = client.post(url(bot), {"section": "theme", "accent": "#0A7D32", "position": "left", "title": "Help"})
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.theme == {"accent": "#0a7d32", "position": "left", "title": "Help", "font": "serif"}
    theme = client.get(url(bot)).context["forms"]["theme"]
    assert (theme.initial["accent"], theme.initial["position"], theme.initial["title"]) == ("#0a7d32", "left", "Help")


@pytest.mark.parametrize("accent", ["blue", "#12345", "#1234567", "#ggg000", "javascript:1"])
def test_an_accent_that_is_not_rrggbb_is_refused(client, bot, accent) -> None:
    response = client.post(url(bot), {"section": "theme", "accent": accent, "position": "left", "title": "Help"})
    assert response.status_code == 200 and b"as #rrggbb" in response.content
    assert b'value="Help"' in response.content
    bot.refresh_from_db()
    assert bot.theme["accent"] == "#2563eb" and bot.theme["position"] == "right"


def test_ticket_settings_are_saved_and_a_bad_email_refused(client, bot) -> None:
    response = client.post(
        url(bot), {"section": "tickets", "ticket_mode": "auto", "support_email": "help@shop.example"}
    )
    assert response.status_code == 302
    bot.refresh_from_db()
    assert (bot.ticket_mode, bot.support_email) == ("auto", "help@shop.example")

    refused = client.post(url(bot), {"section": "tickets", "ticket_mode": "off", "support_email": "not an address"})
    assert refused.status_code == 200 and b"Enter a valid email address" in refused.content
    assert b'value="not an address"' in refused.content
    bot.refresh_from_db()
    assert (bot.ticket_mode, bot.support_email) == ("auto", "help@shop.example")


def test_an_unknown_section_is_a_bad_request(client, bot) -> None:
    assert client.post(url(bot), {"section": "public_key", "public_key": "pk_x"}).status_code == 400


# Deleting


def test_deleting_needs_the_bots_name_typed(client, bot) -> None:
    ConversationFactory(bot=bot)
    refused = client.post(f"/dashboard/bots/{bot.pk}/delete", {"confirm_name": "helper"})
    assert refused.status_code == 200 and b"not this bot&#x27;s name" in refused.content
    assert b'value="helper"' in refused.content
    assert Bot.objects.filter(pk=bot.pk).exists()

    response = client.post(f"/dashboard/bots/{bot.pk}/delete", {"confirm_name": "Helper"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert not Bot.objects.filter(pk=bot.pk).exists() and not Conversation.objects.exists()
    assert b"Helper was deleted." in client.get("/dashboard/").content


def test_delete_is_post_only(client, bot) -> None:
    assert client.get(f"/dashboard/bots/{bot.pk}/delete").status_code == 405


# Roles and tenants


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_viewers_read_the_settings_agents_do_not_and_neither_changes_them(client, role) -> None:
    membership = MembershipFactory(role=role)
    bot = BotFactory(organization=membership.organization, name="Helper", allowed_origins=["https://shop.example"])
    client.force_login(membership.user)
    page = client.get(url(bot))
    if role == "agent":  # agents work the inbox and conversations only
        assert page.status_code == 403
        assert client.post(url(bot), PERSONA).status_code == 403
        return
    assert page.status_code == 200
    assert b"https://shop.example" in page.content
    assert b'name="section"' not in page.content and b'id="delete"' not in page.content
    assert all(field.disabled for form in page.context["forms"].values() for field in form.fields.values())
    assert b"widget.js" in page.content  # the test chat is for everyone

    for section, data in (("persona", PERSONA), ("origins", {"section": "origins", "allowed_origins": ""})):
        assert client.post(url(bot), data).status_code == 403, section
    assert client.post(f"/dashboard/bots/{bot.pk}/delete", {"confirm_name": "Helper"}).status_code == 403
    bot.refresh_from_db()
    assert bot.name == "Helper" and bot.allowed_origins == ["https://shop.example"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_edit(client, role) -> None:
    membership = MembershipFactory(role=role)
    bot = BotFactory(organization=membership.organization)
    client.force_login(membership.user)
    assert b'name="section"' in client.get(url(bot)).content
    assert client.post(url(bot), {"section": "tickets", "ticket_mode": "off"}).status_code == 302


def test_another_tenants_bot_is_not_found(client, admin) -> None:
    other = BotFactory(name="Theirs")
    assert client.get(url(other)).status_code == 404
    assert client.post(url(other), {"section": "tickets", "ticket_mode": "off"}).status_code == 404
    assert client.post(f"/dashboard/bots/{other.pk}/delete", {"confirm_name": "Theirs"}).status_code == 404
    other.refresh_from_db()
    assert other.ticket_mode == "draft"


def test_a_user_without_an_organization_is_told_so(client, django_user_model) -> None:
    bot = BotFactory()
    client.force_login(django_user_model.objects.create_user("loner", password="x"))
    for response in (
        client.get(url(bot)),
        client.get("/dashboard/bots/new"),
        client.post(f"/dashboard/bots/{bot.pk}/delete", {"confirm_name": bot.name}),
    ):
        assert response.status_code == 403
        assert "dashboard/no_organization.html" in [t.name for t in response.templates]


def test_signed_out_visitors_are_sent_to_log_in(client) -> None:
    bot = BotFactory()
    assert client.get(url(bot))["Location"].startswith("/accounts/login/")
    assert client.get("/dashboard/bots/new")["Location"].startswith("/accounts/login/")


# Which model answers, and what an answer costs


def answer(bot: Bot, *, model: str, version: str, total_ms: float, generation_ms: float, tokens: int):  # type: ignore[no-untyped-def]
    from tests.factories import MessageFactory

    generated = bool(model)
    timings = {"mode": "generative" if generated else "extractive", "total_ms": total_ms}
    if generated:
        timings.update(generation_ms=generation_ms, device="cpu", model=model)
    return MessageFactory(
        conversation=ConversationFactory(bot=bot),
        role="bot",
        status="done",
        text="Refunds take five days.",
        timings=timings,
        model_version=version,
        prompt_tokens=tokens - 10,
        completion_tokens=10,
    )


@pytest.mark.usefixtures("in_process_tasks")  # the model's state is this process's, not a worker's
def test_the_page_shows_which_model_answers_and_its_cost_per_answer(client, bot, tiny_neo) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from bots.models import Message

    answer(bot, model="org/llama-3b", version="base", total_ms=300, generation_ms=200, tokens=110)
    answer(bot, model="org/llama-3b", version="base", total_ms=500, generation_ms=400, tokens=130)
    answer(bot, model="", version="", total_ms=40, generation_ms=0, tokens=10)
    old = answer(bot, model="org/old-model", version="base", total_ms=9000, generation_ms=9000, tokens=900)
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    other = BotFactory(organization=bot.organization)
    answer(other, model="org/other", version="base", total_ms=100, generation_ms=50, tokens=10)

    page = client.get(url(bot)).content.decode()
    said = re.search(r'<p id="answering-model">(.*?)</p>', page, re.S)
    assert said is not None
    assert f"<strong>{tiny_neo}</strong>" in said.group(1) and "loads with the first question" in said.group(1)
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(\d+)</td>\s*<td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", page
    )
    assert rows == [
        ("org/llama-3b", "base", "2", "0.4", "0.3", "120"),
        ("none (quoted)", "quoted", "1", "0.04", "0.0", "10"),
    ]
    assert "org/old-model" not in page and "org/other" not in page


def test_with_workers_apart_the_page_says_when_no_generation_worker_reported(client, bot, settings) -> None:
    settings.NEO_TASKS_IN_PROCESS = False  # workers apart, and none has written a heartbeat
    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/8"
    page = client.get(url(bot)).content.decode()
    said = re.search(r'<p id="answering-model">(.*?)</p>', page, re.S)
    assert said is not None and "no generation worker reported" in said.group(1)


def test_an_extractive_bot_says_no_model_writes_its_answers(client, bot) -> None:
    bot.answer_mode = "extractive"
    bot.save()
    page = client.get(url(bot)).content.decode()
    assert "quotes its documents: no language model writes its answers" in page
    assert "the cost per answer shows here once the bot has answered" in page


# A tuned version trained on another base model than the one answering


DEFAULT_MODEL, SECOND_MODEL = "org/default-model", "org/second-model"


@pytest.fixture
def tuned_on_default(bot, settings):
    """Two served models, and `bot` answering on the default with a tuned version of it deployed."""
    from bots.models import ModelVersion, ModelVersionStatus

    settings.NEO_MODEL, settings.NEO_MODELS = DEFAULT_MODEL, [SECOND_MODEL]
    version = ModelVersion.objects.create(bot=bot, number=2, base_model=DEFAULT_MODEL, status=ModelVersionStatus.READY)
    bot.model_version = version
    bot.save()
    return version


def warnings_in(page: str, element: str) -> list[str]:
    return re.findall(rf'<p class="notice warning"{element}[^>]*>(.*?)</p>', page, re.S)


def test_switching_the_base_model_away_from_the_tuned_versions_says_it_will_not_be_used(
    client, bot, tuned_on_default
) -> None:
    persona = {**PERSONA, "answer_mode": "generative"}
    response = client.post(url(bot), {**persona, "base_model": SECOND_MODEL}, follow=True)
    bot.refresh_from_db()
    assert bot.base_model == SECOND_MODEL  # saved all the same
    page = response.content.decode()
    [message] = warnings_in(page, ' role="status"')
    assert message == (
        f"Tuned version v2 was trained on {DEFAULT_MODEL} and will not be used until it is re-tuned on "
        f"{SECOND_MODEL} or the base model is switched back to {DEFAULT_MODEL}."
    )
    # Near the answering model, the same state, and no claim that the adapter answers.
    said = re.search(
        r'<p id="answering-model">(.*?)</p>\s*<p class="notice warning" id="tuned-version-unused"', page, re.S
    )
    assert said is not None and f"<strong>{SECOND_MODEL}</strong>" in said.group(1)
    assert "tuned adapter" not in said.group(1)

    # Saving again without changing the model: the state stays on the page, no new message.
    again = client.post(url(bot), {**persona, "base_model": SECOND_MODEL}, follow=True).content.decode()
    assert warnings_in(again, ' role="status"') == []
    assert len(warnings_in(again, ' id="tuned-version-unused"')) == 1

    back = client.post(url(bot), {**persona, "base_model": ""}, follow=True).content.decode()
    assert "tuned-version-unused" not in back and "will not be used" not in back
    assert "with the tuned adapter" in back


def test_the_model_page_says_the_deployed_version_is_not_used_on_another_base_model(
    client, bot, tuned_on_default
) -> None:
    bot_update(bot=bot, base_model=SECOND_MODEL)
    page = client.get(f"/dashboard/bots/{bot.pk}/model/").content.decode()
    assert "will not be used until it is re-tuned" in page
    assert "answering now" not in page and f"deployed, not used on {SECOND_MODEL}" in page
