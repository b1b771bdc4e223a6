"""Dashboard and demo pages for bots."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotModified,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from bots.analytics.selectors import DEFAULT_DAYS, bot_answer_costs
from bots.chat.selectors import conversation_list
from bots.forms import SETTINGS_FORMS, BotCreateForm, BotDeleteForm
from bots.models import Bot
from bots.selectors import bot_demo, bot_get, bot_get_by_public_key, bot_list, bot_tuned_version_unused
from bots.services import bot_create, bot_delete, bot_update
from neo_support.access import dashboard_area
from neo_support.health import check_model, check_models
from neo_support.models import Membership, Role
from neo_support.permissions import Area
from neo_support.selectors import membership_current
from retrieval.selectors import knowledge_base_list


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:home")


@login_required
def dashboard_home(request: HttpRequest) -> HttpResponse:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    organization = membership.organization
    return render(
        request,
        "dashboard/home.html",
        {
            "organization": organization,
            "membership": membership,
            "bots": bot_list(organization=organization),
            "knowledge_bases": knowledge_base_list(organization=organization),
            "conversation_count": conversation_list(organization=organization).count(),
            "models": check_models()["models"],
        },
    )


def demo_page(request: HttpRequest) -> HttpResponse:
    """The demo bot's sample site, or a note saying how to load it."""
    bot = bot_demo()
    if bot is not None:
        return redirect("demo-bot", public_key=bot.public_key)
    return render(request, "demo.html", {"bot": None}, status=404)


def demo_bot_page(request: HttpRequest, public_key: str) -> HttpResponse:
    """A sample customer site embedding `public_key`'s widget exactly as a customer
    would: one script tag. Served from this server, whose own origin every bot allows."""
    bot = bot_get_by_public_key(public_key=public_key[:40])
    if bot is None:
        raise Http404("No bot has this key.")
    context = {"bot": bot, "snippet": widget_snippet(request, bot), "widget_base": widget_base(request)}
    return render(request, "demo.html", context)


def widget_base(request: HttpRequest) -> str:
    return cast(str, request.build_absolute_uri("/")).rstrip("/")


def widget_snippet(request: HttpRequest, bot: Bot) -> str:
    """The embed code shown to site owners (rendered as text, never as HTML)."""
    return f'<script src="{widget_base(request)}/widget.js" data-bot-key="{bot.public_key}" async></script>'


WIDGET_PATH = Path(__file__).resolve().parent / "static" / "bots" / "widget.js"


@cache
def widget_source() -> tuple[bytes, str]:
    body = WIDGET_PATH.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:16]


@require_GET
def widget_js(request: HttpRequest) -> HttpResponse:
    """The widget script at a stable URL: cached for five minutes, then revalidated by
    ETag, so site owners never change their snippet and still get fixes within minutes."""
    body, version = widget_source()
    etag = f'"{version}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _can_edit(membership: Membership) -> bool:
    return membership.role in (Role.OWNER, Role.ADMIN)


@dashboard_area(Area.BOTS)
def bot_new(request: HttpRequest) -> HttpResponse:
    """Create a bot (owners and admins) and go to its settings."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    if not _can_edit(membership):
        return render(request, "dashboard/forbidden.html", status=403)
    organization = membership.organization
    form = BotCreateForm(request.POST if request.method == "POST" else None, organization=organization)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        bot = bot_create(
            organization=organization,
            name=data["name"],
            instructions=data["instructions"],
            answer_mode=data["answer_mode"],
            knowledge_bases=data["knowledge_bases"],
        )
        messages.success(request, f"{bot.name} is ready. Try it in the test chat below.")
        return redirect("dashboard:bot", bot_id=bot.pk)
    return render(request, "dashboard/bot_new.html", {"form": form})


@dashboard_area(Area.BOTS)
def bot_page(request: HttpRequest, bot_id: int) -> HttpResponse:
    """A bot's settings, one form per section (owners and admins save them; everyone
    else reads them), its embed code and a live test chat. A POST names its `section`."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    bot = bot_get(organization=membership.organization, bot_id=bot_id)
    if bot is None:
        raise Http404("No such bot.")
    if request.method != "POST":
        return _bot_page_response(request, bot, can_edit=_can_edit(membership))
    if not _can_edit(membership):
        return render(request, "dashboard/forbidden.html", status=403)
    form_class = SETTINGS_FORMS.get(request.POST.get("section", ""))
    if form_class is None:
        return HttpResponseBadRequest("Unknown settings section.")
    form = form_class(request.POST, bot=bot)
    if form.is_valid():
        answering_before = bot.answering_model
        try:
            bot_update(bot=bot, **form.changes())
        except ValidationError as error:
            form.add_error(None, error.messages)
        else:
            messages.success(request, "Saved.", extra_tags=form.section)
            # The page shows this state too; the message says that this save caused it.
            unused = bot_tuned_version_unused(bot=bot) if bot.answering_model != answering_before else None
            if unused:
                messages.warning(request, unused, extra_tags=form.section)
            return redirect(reverse("dashboard:bot", kwargs={"bot_id": bot.pk}) + f"#{form.section}")
    return _bot_page_response(request, bot, can_edit=True, bound=form)


@dashboard_area(Area.BOTS)
@require_POST
def bot_delete_view(request: HttpRequest, bot_id: int) -> HttpResponse:
    """Delete a bot (owners and admins), once its name is typed to confirm."""
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        return render(request, "dashboard/no_organization.html", status=403)
    bot = bot_get(organization=membership.organization, bot_id=bot_id)
    if bot is None:
        raise Http404("No such bot.")
    if not _can_edit(membership):
        return render(request, "dashboard/forbidden.html", status=403)
    form = BotDeleteForm(request.POST, bot=bot)
    if not form.is_valid():
        return _bot_page_response(request, bot, can_edit=True, bound=form)
    name = bot.name
    bot_delete(bot=bot)
    messages.success(request, f"{name} was deleted.")
    return redirect("dashboard:home")


def _bot_page_response(
    request: HttpRequest, bot: Bot, *, can_edit: bool, bound: forms.Form | None = None
) -> HttpResponse:
    """The settings page, with `bound` (a form that failed validation, showing what was
    typed and its errors) in place of its section's fresh form."""
    sections = {
        section: bound if isinstance(bound, form_class) else form_class(bot=bot, read_only=not can_edit)
        for section, form_class in SETTINGS_FORMS.items()
    }
    delete_form = bound if isinstance(bound, BotDeleteForm) else BotDeleteForm(bot=bot)
    # The test chat embeds the widget as a site does (its look comes from the saved theme,
    # never from attributes here), plus `data-test-chat` so its conversations are marked.
    context = {
        "bot": bot,
        "can_edit": can_edit,
        "forms": sections,
        "delete_form": delete_form,
        "snippet": widget_snippet(request, bot),
        "widget_base": widget_base(request),
        "model": check_model(bot.answering_model),
        "tuned_version_unused": bot_tuned_version_unused(bot=bot),
        "answer_costs": bot_answer_costs(bot=bot),
        "cost_days": DEFAULT_DAYS,
    }
    return render(request, "dashboard/bot.html", context)
