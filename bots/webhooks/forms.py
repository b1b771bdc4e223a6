"""The form that adds a webhook endpoint."""

from __future__ import annotations

from django import forms

from bots.models import WebhookEvent


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(max_length=500, assume_scheme="https", label="URL")
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None ticked means every event, including ones added later.",
    )
