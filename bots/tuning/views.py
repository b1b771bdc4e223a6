"""The bot's model page: tune on its own history, watch the run, compare base and
tuned side by side, deploy a ready version or roll back, download a run's dataset."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from bots.models import Bot, ModelVersion
from bots.selectors import bot_get, bot_tuned_version_unused
from bots.tuning.adapter_files import adapter_dataset
from bots.tuning.services import RUNNING, TuningRefused, bot_model_deploy, model_version_cancel, model_version_start
from neo_support import audit
from neo_support.access import dashboard_area
from neo_support.models import Membership
from neo_support.permissions import Area, role_may
from neo_support.selectors import membership_current

METRICS = [
    ("perplexity", "Validation perplexity (lower is better)"),
    ("groundedness", "Groundedness in the cited passages"),
    ("moderation_pass", "Moderation pass rate"),
    ("overlap", "Overlap with the agents' answers"),
]


def _bot(request: HttpRequest, bot_id: int) -> tuple[Membership, Bot]:
    membership = membership_current(user=request.user, session=request.session)
    if membership is None:
        raise Http404("No organization.")
    bot = bot_get(organization=membership.organization, bot_id=bot_id)
    if bot is None:
        raise Http404("No such bot.")
    return membership, bot


def _can_edit(membership: Membership) -> bool:
    return role_may(membership.role, Area.BOTS, write=True)


def _rows(version: ModelVersion) -> list[dict[str, Any]]:
    base, tuned = version.metrics.get("base", {}), version.metrics.get("tuned", {})
    return [{"label": label, "base": base.get(key), "tuned": tuned.get(key)} for key, label in METRICS]


@dashboard_area(Area.BOTS)
def model_page(request: HttpRequest, bot_id: int) -> HttpResponse:
    membership, bot = _bot(request, bot_id)
    versions = list(bot.model_versions.annotate(erasure_count=Count("erasures")))
    context = {
        "bot": bot,
        "versions": [{"version": v, "rows": _rows(v), "erasures": v.erasure_count} for v in versions],
        "running": any(v.status in RUNNING for v in versions),
        "can_edit": _can_edit(membership),
        "typed": request.POST if request.method == "POST" else {},
        "tuned_version_unused": bot_tuned_version_unused(bot=bot),
    }
    if request.method != "POST":
        return render(request, "dashboard/bot_model.html", context)
    if not _can_edit(membership):
        return render(request, "dashboard/forbidden.html", status=403)
    action = request.POST.get("action", "")
    try:
        if action == "start":
            options = {
                "epochs": _number(request, "epochs", float, 3.0),
                "rank": _number(request, "rank", int, 8),
                "learning_rate": _number(request, "learning_rate", float, 5e-4),
            }
            version = model_version_start(bot=bot, options=options, by=request.user)
            messages.success(request, f"Tuning {version.label} is queued. Progress shows here.")
        elif action in ("cancel", "deploy"):
            chosen = request.POST.get("version", "")
            if not chosen.isdigit():
                raise TuningRefused("Choose a version.")
            version = get_object_or_404(ModelVersion, bot=bot, pk=int(chosen))
            if action == "cancel":
                model_version_cancel(version=version)
                messages.success(request, f"Stopping {version.label}; its checkpoint is kept.")
            else:
                bot_model_deploy(bot=bot, version=version)
                messages.success(request, f"{bot.name} answers with {version.label} from its next reply.")
        elif action == "rollback":
            bot_model_deploy(bot=bot, version=None)
            messages.success(request, f"{bot.name} answers with the base model again.")
        else:
            raise TuningRefused(f"Unknown action {action!r}.")
    except TuningRefused as problem:
        messages.error(request, str(problem))
        return render(request, "dashboard/bot_model.html", context, status=400)
    return redirect("dashboard:bot-model", bot_id=bot.pk)


def _number(request: HttpRequest, name: str, kind: type, default: float) -> Any:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise TuningRefused(f"{name.replace('_', ' ').capitalize()} must be a number.") from None


@dashboard_area(Area.BOTS)
@require_GET
def model_status(request: HttpRequest, bot_id: int) -> JsonResponse:
    """Polled by the page while a run is going."""
    _, bot = _bot(request, bot_id)
    rows = bot.model_versions.values("id", "number", "status", "progress", "error")
    return JsonResponse({"versions": list(rows), "deployed": bot.model_version_id})


@dashboard_area(Area.BOTS)
@require_GET
def model_dataset(request: HttpRequest, bot_id: int, version_id: int) -> FileResponse:
    """The run's training data as JSONL (personal data already redacted), for inspection."""
    _, bot = _bot(request, bot_id)
    version = get_object_or_404(ModelVersion, bot=bot, pk=version_id)
    dataset = adapter_dataset(version=version)
    if dataset is None:
        raise Http404("This run has no dataset yet.")
    audit.record(
        organization=bot.organization_id,
        action="export.training_dataset",
        target=version,
        target_label=f"{bot.name} {version.label}",
    )
    return FileResponse(
        dataset,
        as_attachment=True,
        filename=f"{bot.name}-{version.label}.jsonl",
        content_type="application/jsonl",
    )
