"""Dashboard and demo pages for bots."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from bots.models import Bot
from bots.selectors import bot_list, conversation_list
from neo_support.health import check_model
from neo_support.selectors import membership_current
from retrieval.selectors import knowledge_base_list


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard:home")


@login_required
def dashboard_home(request: HttpRequest) -> HttpResponse:
    membership = membership_current(user=request.user)
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
            "model": check_model(),
        },
    )


def demo_page(request: HttpRequest) -> HttpResponse:
    """A sample customer site: the page a site owner would paste the widget snippet into."""
    bot = Bot.objects.filter(organization__slug="tallyho-demo").first()
    return render(request, "demo.html", {"bot": bot})
