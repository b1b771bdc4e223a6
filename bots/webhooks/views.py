"""Webhook pages of the dashboard: list, create, pause and delete endpoints."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from bots.models import WebhookDelivery, WebhookEndpoint
from bots.webhooks.forms import WebhookEndpointForm
from bots.webhooks.services import (
    WebhookRejected,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_set_active,
)
from neo_support.access import dashboard_area, forbidden, may_manage, member_required
from neo_support.models import Membership
from neo_support.permissions import Area

RECENT_DELIVERIES = 5


@dashboard_area(Area.WEBHOOKS)
@member_required
def webhooks(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Endpoints with their latest deliveries; owners and admins add one here, and its
    signing secret is shown in the response to the POST that added it."""
    can_manage = may_manage(membership)
    form = WebhookEndpointForm()
    created: WebhookEndpoint | None = None
    status = 200
    if request.method == "POST":
        if not can_manage:
            return forbidden(request)
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            try:
                created = webhook_endpoint_create(
                    organization=membership.organization,
                    url=form.cleaned_data["url"],
                    events=form.cleaned_data["events"],
                )
            except WebhookRejected as error:
                form.add_error("url", str(error))
        if created is None:
            status = 400
        else:
            form = WebhookEndpointForm()
    recent = WebhookDelivery.objects.order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    endpoints = WebhookEndpoint.objects.for_organization(membership.organization).prefetch_related(
        Prefetch("deliveries", queryset=recent, to_attr="recent_deliveries")
    )
    context = {"form": form, "endpoints": endpoints, "created": created, "can_manage": can_manage}
    response = render(request, "dashboard/webhooks.html", context, status=status)
    if created is not None:
        add_never_cache_headers(response)
    return response


def _webhook_endpoint(membership: Membership, endpoint_id: int) -> WebhookEndpoint:
    endpoint: WebhookEndpoint | None = (
        WebhookEndpoint.objects.for_organization(membership.organization).filter(pk=endpoint_id).first()
    )
    if endpoint is None:
        raise Http404("No such webhook endpoint.")
    return endpoint


@dashboard_area(Area.WEBHOOKS)
@member_required
@require_POST
def webhook_active(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    """Pause (active=0) or resume (active=1) an endpoint: a paused one is sent nothing."""
    endpoint = _webhook_endpoint(membership, endpoint_id)
    if not may_manage(membership):
        return forbidden(request)
    webhook_endpoint_set_active(endpoint=endpoint, active=request.POST.get("active") == "1")
    messages.success(request, f"{endpoint.url} is {'active' if endpoint.active else 'paused'}.")
    return redirect("organization:webhooks")


@dashboard_area(Area.WEBHOOKS)
@member_required
@require_POST
def webhook_delete(request: HttpRequest, membership: Membership, endpoint_id: int) -> HttpResponse:
    endpoint = _webhook_endpoint(membership, endpoint_id)
    if not may_manage(membership):
        return forbidden(request)
    url = endpoint.url
    webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, f"{url} was deleted with its deliveries.")
    return redirect("organization:webhooks")
