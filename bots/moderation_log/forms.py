"""The moderation log's filter form."""

from __future__ import annotations

from typing import Any

from django import forms

from bots.models import Bot
from bots.moderation_log.findings import FILTERS
from bots.moderation_log.selectors import ReviewState
from neo_support.models import Organization

GROUPED = "grouped"


class ModerationFilterForm(forms.Form):
    """The moderation log's filters (GET); a blank field does not filter."""

    bot = forms.ModelChoiceField(queryset=Bot.objects.none(), required=False, empty_label="All bots")
    action = forms.ChoiceField(
        required=False,
        choices=[("", "Any action"), ("flag", "Flagged"), ("remove", "Withheld sentence"), ("block", "Blocked")],
    )
    filter = forms.ChoiceField(required=False, choices=[("", "Any filter"), *[(name, name) for name in FILTERS]])
    reason = forms.CharField(required=False, max_length=500)
    review = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any review"),
            (ReviewState.UNREVIEWED, "Unreviewed"),
            (ReviewState.FALSE_POSITIVE, "False positive"),
        ],
    )

    view = forms.ChoiceField(
        required=False, choices=[("", "Messages"), (GROUPED, "Grouped by filter and reason")], label="Show"
    )

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bot"].queryset = Bot.objects.for_organization(organization)
