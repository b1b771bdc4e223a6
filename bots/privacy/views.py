"""The privacy pages (owners only): find a person and see what is held about them,
download it, erase it and watch the erasure; the retention settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from bots.privacy.audit_hooks import audit
from bots.privacy.erasure import erasure_progress, person_erasure_start
from bots.privacy.export import archive_response
from bots.privacy.retention import KINDS, LABELS, RetentionRefused, retention_days, retention_policy_update
from bots.privacy.selectors import (
    KEY_KINDS,
    PersonKey,
    PersonKeyInvalid,
    erasures_of,
    person_find,
    person_overview,
    retention_policy_of,
    retention_runs_of,
)
from neo_support.access import dashboard_area, member_required
from neo_support.models import Membership
from neo_support.permissions import Area

KIND_LABELS = {"email": "Email address", "visitor_id": "Visitor id", "ticket": "Ticket (id or token)"}


def _key(request: HttpRequest, source: dict[str, str]) -> PersonKey:
    return PersonKey.parse(source.get("kind", "email"), source.get("q", ""))


@dashboard_area(Area.PRIVACY)
@member_required
@require_GET
def privacy_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Search by email address, visitor id or ticket; what is held; export; erase."""
    organization = membership.organization
    context: dict[str, object] = {
        "kinds": [(kind, KIND_LABELS[kind]) for kind in KEY_KINDS],
        "kind": request.GET.get("kind", "email"),
        "q": request.GET.get("q", ""),
        "erasures": [erasure_progress(erasure) for erasure in erasures_of(organization)],
    }
    status = 200
    if request.GET.get("q", "").strip():
        try:
            key = _key(request, request.GET)
        except PersonKeyInvalid as problem:
            context["error"] = str(problem)
            status = 400
        else:
            person = person_find(organization=organization, key=key)
            context["searched"] = True
            context["person"] = person_overview(person) if person.found else None
    return render(request, "dashboard/privacy.html", context, status=status)


@dashboard_area(Area.PRIVACY)
@member_required
@require_GET
def privacy_export(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The person's data as a zip archive, streamed."""
    try:
        key = _key(request, request.GET)
    except PersonKeyInvalid as problem:
        return HttpResponse(str(problem), status=400, content_type="text/plain; charset=utf-8")
    person = person_find(organization=membership.organization, key=key)
    if not person.found:
        return HttpResponse("Nothing is held about that person.", status=404, content_type="text/plain; charset=utf-8")
    audit("person.export", organization=membership.organization, by=request.user, details={"kind": key.kind})
    return archive_response(person)


@dashboard_area(Area.PRIVACY)
@member_required
@require_POST
def privacy_erase(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        key = _key(request, request.POST)
    except PersonKeyInvalid as problem:
        messages.error(request, str(problem))
        return redirect("dashboard:privacy")
    started = person_erasure_start(organization=membership.organization, key=key, by=request.user)
    if not started.found:
        messages.info(request, "Nothing is held about that person; nothing was changed.")
    elif started.created:
        messages.success(request, "The erasure is queued; its progress shows below.")
    else:
        messages.info(request, "That person is already being erased; its progress shows below.")
    return redirect("dashboard:privacy")


@dashboard_area(Area.PRIVACY)
@member_required
@require_GET
def privacy_erasures_status(request: HttpRequest, membership: Membership) -> JsonResponse:
    """The erasures' progress, polled by the page while one runs."""
    erasures = [erasure_progress(erasure) for erasure in erasures_of(membership.organization)]
    return JsonResponse({"erasures": erasures})


@dashboard_area(Area.PRIVACY)
@member_required
def retention_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Days per kind ("forever" when blank), and what the last passes deleted."""
    organization = membership.organization
    policy = retention_policy_of(organization)
    values: dict[str, object] = dict(retention_days(policy))
    error = ""
    status = 200
    if request.method == "POST":
        values = {kind: request.POST.get(kind, "").strip() for kind in KINDS}
        try:
            retention_policy_update(organization=organization, days=values, by=request.user)
        except RetentionRefused as problem:
            error = str(problem)
            status = 400
        else:
            messages.success(request, "Retention saved; the hourly pass applies it.")
            return redirect("dashboard:retention")
    context = {
        "rows": [(kind, LABELS[kind], values.get(kind)) for kind in KINDS],
        "error": error,
        "runs": retention_runs_of(organization),
    }
    return render(request, "dashboard/retention.html", context, status=status)
