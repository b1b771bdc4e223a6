"""Dashboard forms for bots."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.conf import settings

from bots.chat.origins import normalise_origin
from bots.models import AnswerMode, Bot, TicketMode
from neo_support.model_queues import served_models
from neo_support.models import Organization
from retrieval.models import KnowledgeBase

MAX_ORIGINS = 50
MAX_STARTER_QUESTIONS = 10
MAX_PHRASES = 500
ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")


def split_lines(text: str, *, limit: int, max_chars: int, what: str) -> list[str]:
    """Non-blank lines of `text`, stripped, first occurrence kept; a ValidationError when
    there are more than `limit` or one is longer than `max_chars`."""
    lines = list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
    if len(lines) > limit:
        raise forms.ValidationError(f"At most {limit} {what}.")
    for line in lines:
        if len(line) > max_chars:
            raise forms.ValidationError(f"{line[:40]!r}… is longer than {max_chars} characters.")
    return lines


def org_knowledge_bases(organization: Organization) -> forms.ModelMultipleChoiceField:
    """Checkboxes for the organization's knowledge bases only: another tenant's id is
    refused as an invalid choice."""
    return forms.ModelMultipleChoiceField(
        queryset=KnowledgeBase.objects.for_organization(organization),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the bot searches to answer.",
    )


ANSWER_MODE_HELP = "Generative writes each answer from the passages found; extractive quotes the best of them."
NO_MODEL_HELP = (
    "Extractive for now: the generation model is not on this server yet, so bots quote their documents even when set "
    "to generative. Run `python manage.py download_model` on the server (it needs internet access); the model is "
    "picked up within a few minutes, without a restart, and generative answers then work."
)
NO_MODEL_HELP_SAVED = (
    "The generation model is not on this server yet, so answers are quoted from the documents even in generative "
    "mode. Run `python manage.py download_model` on the server (it needs internet access); the model is picked up "
    "within a few minutes, without a restart."
)


def model_missing() -> bool:
    """Whether generated answers are impossible now because the model is not available.
    Never loads the model: this process's own holder says when tasks run here, the
    generation workers' heartbeats when they run apart (`/healthz`'s model check), and
    when neither knows yet, whether the weights are in the local cache."""
    from django.conf import settings

    from neo_support.health import check_model
    from workers.generation.model import local_weights

    state = check_model().get("state")
    if state in {"loaded", "not_loaded"}:
        return False  # not_loaded: the weights are here, and it loads with the first reply
    if state == "unavailable":
        return True
    return local_weights(settings.NEO_MODEL) is None


class BotCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    instructions = forms.CharField(
        label="Persona",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Who the bot is and the rules it follows.",
    )
    knowledge_bases = forms.ModelMultipleChoiceField(queryset=KnowledgeBase.objects.none(), required=False)
    answer_mode = forms.ChoiceField(choices=AnswerMode.choices, initial=AnswerMode.GENERATIVE)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["knowledge_bases"] = org_knowledge_bases(organization)
        # A new bot set to generate while there is no model would quietly quote instead.
        missing = model_missing()
        field = self.fields["answer_mode"]
        field.initial = AnswerMode.EXTRACTIVE if missing else AnswerMode.GENERATIVE
        field.help_text = NO_MODEL_HELP if missing else ANSWER_MODE_HELP


class BotSettingsForm(forms.Form):
    """One section of a bot's settings page: filled from the bot, and turned back into the
    fields `bots.services.bot_update` writes. Posted with a hidden `section` field."""

    section: ClassVar[str]

    def __init__(self, data: Any = None, *, bot: Bot, read_only: bool = False) -> None:
        super().__init__(data, initial=self.initial_from(bot))
        self.bot = bot
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        raise NotImplementedError

    def changes(self) -> dict[str, Any]:
        """The bot's fields to write, from cleaned_data (call after is_valid())."""
        raise NotImplementedError


GENERATION_FIELDS = ("temperature", "top_p", "max_new_tokens", "repetition_penalty")


class BotPersonaForm(BotSettingsForm):
    section = "persona"

    name = forms.CharField(max_length=200)
    instructions = forms.CharField(
        label="Persona",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Who the bot is and the rules it follows.",
    )
    answer_mode = forms.ChoiceField(choices=AnswerMode.choices)
    knowledge_bases = forms.ModelMultipleChoiceField(queryset=KnowledgeBase.objects.none(), required=False)
    welcome_message = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))
    starter_questions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"One per line, at most {MAX_STARTER_QUESTIONS}: shown as buttons before the first message.",
    )
    temperature = forms.FloatField(
        min_value=0, max_value=2, help_text="0 always picks the likeliest word; higher varies more."
    )
    top_p = forms.FloatField(label="Top p", min_value=0.01, max_value=1)
    max_new_tokens = forms.IntegerField(label="Longest answer (tokens)", min_value=1, max_value=1024)
    repetition_penalty = forms.FloatField(min_value=1, max_value=2)

    def __init__(self, data: Any = None, *, bot: Bot, read_only: bool = False) -> None:
        super().__init__(data, bot=bot, read_only=read_only)
        field = org_knowledge_bases(bot.organization)
        field.disabled = read_only
        self.fields["knowledge_bases"] = field
        self.fields["answer_mode"].help_text = NO_MODEL_HELP_SAVED if model_missing() else ANSWER_MODE_HELP
        served = served_models(settings.NEO_MODEL, settings.NEO_MODELS)
        if len(served) > 1:  # the deployment serves several base models: the bot picks one
            self.fields["base_model"] = forms.ChoiceField(
                label="Model",
                choices=[("", f"{served[0]} (the default)"), *((model, model) for model in served[1:])],
                required=False,
                disabled=read_only,
                help_text="The language model that writes this bot's answers. A tuned version answers only on "
                "the model it was tuned on.",
            )

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        generation = bot.generation if isinstance(bot.generation, dict) else {}
        defaults = Bot._meta.get_field("generation").get_default()
        return {
            "name": bot.name,
            "instructions": bot.instructions,
            "answer_mode": bot.answer_mode,
            "base_model": bot.base_model if bot.base_model in settings.NEO_MODELS else "",
            "knowledge_bases": list(bot.knowledge_bases.all()) if bot.pk else [],
            "welcome_message": bot.welcome_message,
            "starter_questions": "\n".join(str(q) for q in bot.starter_questions or []),
            **{key: generation.get(key, defaults[key]) for key in GENERATION_FIELDS},
        }

    def clean_starter_questions(self) -> list[str]:
        return split_lines(
            self.cleaned_data["starter_questions"], limit=MAX_STARTER_QUESTIONS, max_chars=200, what="questions"
        )

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        generation = dict(self.bot.generation) if isinstance(self.bot.generation, dict) else {}
        generation.update({key: data[key] for key in GENERATION_FIELDS})
        chosen = {"base_model": data["base_model"]} if "base_model" in self.fields else {}
        return {
            **chosen,
            "name": data["name"],
            "instructions": data["instructions"],
            "answer_mode": data["answer_mode"],
            "knowledge_bases": list(data["knowledge_bases"]),
            "welcome_message": data["welcome_message"],
            "starter_questions": data["starter_questions"],
            "generation": generation,
        }


class BotConfidenceForm(BotSettingsForm):
    section = "confidence"

    answer_threshold = forms.FloatField(
        min_value=0, max_value=1, help_text="Below this the bot answers and offers a person."
    )
    handoff_threshold = forms.FloatField(
        min_value=0, max_value=1, help_text="Below this the bot hands the conversation to a person."
    )

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        return {"answer_threshold": bot.answer_threshold, "handoff_threshold": bot.handoff_threshold}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        answer, handoff = data.get("answer_threshold"), data.get("handoff_threshold")
        if answer is not None and handoff is not None and handoff > answer:
            self.add_error("handoff_threshold", "The handoff threshold cannot be above the answer threshold.")
        return data

    def changes(self) -> dict[str, Any]:
        return {key: self.cleaned_data[key] for key in ("answer_threshold", "handoff_threshold")}


# The values workers.moderation.pipeline.Policy.from_bot reads; anything else is its default.
BLOCKLIST_ACTIONS = [("block", "Block the message"), ("flag", "Flag it for review")]
PII_ACTIONS = [("redact", "Redact"), ("flag", "Flag"), ("off", "Off")]
CLASSIFIER_ACTIONS = [("block", "Block"), ("flag", "Flag"), ("off", "Off")]
GROUNDING_ACTIONS = [("remove", "Withhold unsupported sentences"), ("off", "Off")]
POLICY_KEYS = ("blocklist", "allowlist", "blocklist_action", "pii", "toxicity", "injection", "grounding")


class BotModerationForm(BotSettingsForm):
    section = "moderation"

    blocklist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Words and phrases to stop, one per line; matched as whole words, through disguises.",
    )
    allowlist = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Words and phrases that are never blocked or flagged, one per line: harmless uses of a "
        "blocked word, such as “kill the process” on an IT help desk.",
    )
    blocklist_action = forms.ChoiceField(label="A blocklisted word", choices=BLOCKLIST_ACTIONS)
    pii = forms.ChoiceField(label="Personal data", choices=PII_ACTIONS)
    toxicity = forms.ChoiceField(label="Hate", choices=CLASSIFIER_ACTIONS)
    injection = forms.ChoiceField(label="Prompt injection", choices=CLASSIFIER_ACTIONS)
    grounding = forms.ChoiceField(label="Grounding", choices=GROUNDING_ACTIONS)
    safe_reply = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What replaces a blocked answer; blank for the default.",
    )

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        # Read through the pipeline's own parser, so the form shows what is in force.
        from workers.moderation.pipeline import SAFE_REPLY, Policy
        from workers.moderation.verdicts import Action

        policy = Policy.from_bot(bot.moderation_policy if isinstance(bot.moderation_policy, dict) else {})

        def name(action: Action | None) -> str:
            return "off" if action is None else action.name.lower()

        return {
            "blocklist": "\n".join(policy.blocklist),
            "allowlist": "\n".join(policy.allowlist),
            "blocklist_action": name(policy.blocklist_action),
            "pii": name(policy.pii),
            "toxicity": name(policy.toxicity),
            "injection": name(policy.injection),
            "grounding": "remove" if policy.grounding else "off",
            "safe_reply": "" if policy.safe_reply == SAFE_REPLY else policy.safe_reply,
        }

    def clean_blocklist(self) -> list[str]:
        return split_lines(self.cleaned_data["blocklist"], limit=MAX_PHRASES, max_chars=300, what="phrases")

    def clean_allowlist(self) -> list[str]:
        return split_lines(self.cleaned_data["allowlist"], limit=MAX_PHRASES, max_chars=300, what="phrases")

    def changes(self) -> dict[str, Any]:
        """The stored policy with this form's keys replaced; keys the form does not know are kept."""
        policy = dict(self.bot.moderation_policy) if isinstance(self.bot.moderation_policy, dict) else {}
        policy.update({key: self.cleaned_data[key] for key in POLICY_KEYS})
        safe_reply = self.cleaned_data["safe_reply"].strip()
        if safe_reply:
            policy["safe_reply"] = safe_reply
        else:
            policy.pop("safe_reply", None)
        return {"moderation_policy": policy}


class BotOriginsForm(BotSettingsForm):
    section = "origins"

    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "https://www.example.com\nhttps://*.example.com"}),
        help_text="One per line: the sites whose pages may show this bot's widget. "
        "https://*.example.com allows every subdomain. This server's own pages are always allowed.",
    )

    def clean_allowed_origins(self) -> list[str]:
        origins: list[str] = []
        for line in self.cleaned_data["allowed_origins"].splitlines():
            entry = line.strip()
            if not entry:
                continue
            wildcard = "://*." in entry
            checked = normalise_origin(entry.replace("://*.", "://", 1) if wildcard else entry)
            if checked is None:
                raise forms.ValidationError(f"{entry!r} is not a site origin like https://www.example.com.")
            origins.append(checked.replace("://", "://*.", 1) if wildcard else checked)
        if len(origins) > MAX_ORIGINS:
            raise forms.ValidationError(f"At most {MAX_ORIGINS} sites.")
        return list(dict.fromkeys(origins))

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        return {"allowed_origins": "\n".join(bot.allowed_origins or [])}

    def changes(self) -> dict[str, Any]:
        return {"allowed_origins": self.cleaned_data["allowed_origins"]}


class BotThemeForm(BotSettingsForm):
    section = "theme"

    accent = forms.CharField(
        label="Accent colour",
        widget=forms.TextInput(attrs={"placeholder": "#2563eb", "size": 8}),
        help_text="As #rrggbb.",
    )
    position = forms.ChoiceField(choices=[("right", "Bottom right"), ("left", "Bottom left")])
    title = forms.CharField(label="Title", max_length=80, required=False)

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        theme = bot.theme if isinstance(bot.theme, dict) else {}
        defaults = Bot._meta.get_field("theme").get_default()
        return {key: theme.get(key, defaults[key]) for key in ("accent", "position", "title")}

    def clean_accent(self) -> str:
        accent: str = self.cleaned_data["accent"].strip()
        if not ACCENT.match(accent):
            raise forms.ValidationError("Give a colour as #rrggbb, like #2563eb.")
        return accent.lower()

    def changes(self) -> dict[str, Any]:
        theme = dict(self.bot.theme) if isinstance(self.bot.theme, dict) else {}
        theme.update({key: self.cleaned_data[key] for key in ("accent", "position", "title")})
        return {"theme": theme}


class BotTicketsForm(BotSettingsForm):
    section = "tickets"

    ticket_mode = forms.ChoiceField(label="Bot answers to tickets", choices=TicketMode.choices)
    support_email = forms.EmailField(
        required=False, help_text="The address tickets are answered from; blank for the server's default."
    )

    def initial_from(self, bot: Bot) -> dict[str, Any]:
        return {"ticket_mode": bot.ticket_mode, "support_email": bot.support_email}

    def changes(self) -> dict[str, Any]:
        return {key: self.cleaned_data[key] for key in ("ticket_mode", "support_email")}


SETTINGS_FORMS: dict[str, type[BotSettingsForm]] = {
    form.section: form
    for form in (BotPersonaForm, BotConfidenceForm, BotModerationForm, BotOriginsForm, BotThemeForm, BotTicketsForm)
}


class BotDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the bot's name to confirm", max_length=200)

    def __init__(self, *args: Any, bot: Bot, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bot = bot

    def clean_confirm_name(self) -> str:
        typed = str(self.cleaned_data["confirm_name"])
        if typed.strip() != self.bot.name.strip():
            raise forms.ValidationError("That is not this bot's name.")
        return typed
