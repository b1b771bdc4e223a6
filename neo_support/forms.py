"""Dashboard forms for the organization: team, API keys, webhooks, settings."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.http import HttpRequest

from neo_support.models import API_SCOPES, Organization, Role

_no_null_characters = ProhibitNullCharactersValidator()


def posted_text(request: HttpRequest, name: str) -> str:
    """A text field of a POST read without a Form. One holding a NUL character is refused
    with a ValidationError, as Django's form fields do: PostgreSQL cannot store it (a 500)."""
    value: str = request.POST.get(name, "")
    _no_null_characters(value)
    return value


class InvitationForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.AGENT)

    def __init__(self, *args: Any, can_grant_owner: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not can_grant_owner:
            self.fields["role"].choices = [choice for choice in Role.choices if choice[0] != Role.OWNER]


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses this key, e.g. “Zapier” or “CRM sync”.")
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )


class OrganizationSettingsForm(forms.Form):
    name = forms.CharField(max_length=Organization._meta.get_field("name").max_length)
    require_two_factor = forms.BooleanField(
        required=False,
        label="Require two-factor authentication",
        help_text=(
            "Every member must sign in with a code from an authenticator app; members without one "
            "are asked to set it up before they can use the dashboard."
        ),
    )

    def __init__(self, *args: Any, can_require_two_factor: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only owners change it: for anyone else the box shows the setting and ignores what is posted.
        self.fields["require_two_factor"].disabled = not can_require_two_factor
