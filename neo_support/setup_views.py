"""The first-run setup page (/setup/) and the middleware that leads every dashboard page
to it while the install has no organization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers

from bots.forms import model_missing
from bots.models import AnswerMode
from neo_support.selectors import setup_open
from neo_support.services import organization_switch
from neo_support.setup import FirstKnowledgeBase, OwnerAccount, SetupClosed, SetupError, setup_complete
from retrieval.loaders import SUPPORTED_EXTENSIONS
from retrieval.services.documents import DocumentRejected, check_address, check_upload


class FirstRunMiddleware:
    """Until the install has its first organization, / and every page under /dashboard/
    lead to the setup page, for a signed-out visitor too (there is no account to sign in
    with yet) and for a `createsuperuser` user (who becomes the owner there)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (request.path == "/" or request.path.startswith("/dashboard/")) and setup_open():
            return redirect("setup")
        return self.get_response(request)


class OwnerAccountForm(UserCreationForm):
    """The owner's new account: a username free in any letter case, an email address, and a
    password typed twice and checked by AUTH_PASSWORD_VALIDATORS. Never saved itself: the
    setup service creates the user in its transaction."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["password1"].help_text = "At least 8 characters; not a common password, nor all digits."

    def account(self) -> OwnerAccount:
        data = self.cleaned_data
        return OwnerAccount(username=data["username"], email=data["email"], password=data["password1"])


class SetupForm(forms.Form):
    organization_name = forms.CharField(label="Organization name", max_length=200)
    knowledge_base_name = forms.CharField(
        label="Knowledge base name", max_length=200, required=False, initial="Help centre"
    )
    document = forms.FileField(
        label="Upload a document",
        required=False,
        help_text="A help-centre article, FAQ or manual: " + ", ".join(sorted(SUPPORTED_EXTENSIONS)) + ".",
    )
    url = forms.URLField(
        label="…or import a web page",
        required=False,
        assume_scheme="https",
        max_length=2000,
        help_text="A public page, such as your FAQ; it is fetched once, now.",
    )
    bot_name = forms.CharField(
        label="Bot name",
        max_length=200,
        required=False,
        help_text="Leave empty to create the bot later. It answers from the knowledge base above.",
    )

    def clean_document(self) -> Any:
        upload = self.cleaned_data.get("document")
        if upload:
            try:
                check_upload(upload.name, upload.size)
            except DocumentRejected as error:
                raise forms.ValidationError(str(error)) from None
        return upload

    def clean_url(self) -> str:
        url = str(self.cleaned_data.get("url") or "")
        if url:
            try:
                check_address(url)
            except DocumentRejected as error:
                raise forms.ValidationError(str(error)) from None
        return url

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("document") and data.get("url"):
            raise forms.ValidationError("Upload a document or give a web address, not both.")
        if (data.get("document") or data.get("url")) and not str(data.get("knowledge_base_name", "")).strip():
            self.add_error("knowledge_base_name", "Name the knowledge base the document goes into.")
        return data

    def first_knowledge_base(self) -> FirstKnowledgeBase | None:
        data = self.cleaned_data
        upload = data.get("document")
        if upload:
            return FirstKnowledgeBase(name=data["knowledge_base_name"], filename=upload.name, data=upload.read())
        if data.get("url"):
            return FirstKnowledgeBase(name=data["knowledge_base_name"], url=data["url"])
        return None


def setup_page(request: HttpRequest) -> HttpResponse:
    """Create the organization, its owner (a new account, or the signed-in user) and,
    if asked, a first knowledge base and bot; then sign the owner in and show the bot's
    page with its test chat. Once the install has an organization, the page sends
    visitors to the dashboard and refuses a POST (409) without creating anything."""
    if not setup_open():
        if request.method == "POST":
            return _closed(request)
        return redirect("dashboard:home")
    signed_in = request.user.is_authenticated
    posted = request.method == "POST"
    form = SetupForm(request.POST if posted else None, request.FILES if posted else None)
    account_form = None if signed_in else OwnerAccountForm(request.POST if posted else None, prefix="owner")
    status = 200
    if posted:
        status = 400
        forms_valid = form.is_valid() and (account_form is None or account_form.is_valid())
        if forms_valid:
            try:
                result = setup_complete(
                    organization_name=form.cleaned_data["organization_name"],
                    owner=request.user if account_form is None else account_form.account(),
                    knowledge_base=form.first_knowledge_base(),
                    bot_name=form.cleaned_data["bot_name"],
                    answer_mode=AnswerMode.EXTRACTIVE if model_missing() else AnswerMode.GENERATIVE,
                )
            except SetupClosed:
                return _closed(request)
            except SetupError as error:
                form.add_error(None, str(error))
            else:
                if account_form is not None:
                    login(request, result.owner, backend=settings.AUTHENTICATION_BACKENDS[0])
                organization_switch(session=request.session, user=result.owner, organization_id=result.organization.pk)
                messages.success(request, f"{result.organization.name} is ready, and you are its owner.")
                if result.bot is not None:
                    return redirect("dashboard:bot", bot_id=result.bot.pk)
                return redirect("dashboard:home")
    context = {"form": form, "account_form": account_form, "model_missing": model_missing()}
    response = render(request, "setup/page.html", context, status=status)
    add_never_cache_headers(response)
    return response


def _closed(request: HttpRequest) -> HttpResponse:
    return render(request, "setup/closed.html", {"reason": SetupClosed().args[0]}, status=409)
