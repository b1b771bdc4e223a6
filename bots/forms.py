"""Dashboard forms for bots."""

from __future__ import annotations

from typing import Any

from django import forms

from bots.models import Bot
from bots.moderation_log import FILTERS
from bots.origins import normalise_origin
from bots.selectors import ReviewState
from neo_support.models import Organization

MAX_ORIGINS = 50


class BotOriginsForm(forms.Form):
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


class ModerationFilterForm(forms.Form):
    """The moderation log's filters (GET); a blank field does not filter."""

    bot = forms.ModelChoiceField(queryset=Bot.objects.none(), required=False, empty_label="All bots")
    action = forms.ChoiceField(
        required=False,
        choices=[("", "Any action"), ("flag", "Flagged"), ("remove", "Withheld sentence"), ("block", "Blocked")],
    )
    filter = forms.ChoiceField(required=False, choices=[("", "Any filter"), *[(name, name) for name in FILTERS]])
    review = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any review"),
            (ReviewState.UNREVIEWED, "Unreviewed"),
            (ReviewState.FALSE_POSITIVE, "False positive"),
        ],
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bot"].queryset = Bot.objects.for_organization(organization)
