"""Project-level views: health, and the error pages."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import cast

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.csrf import csrf_failure as html_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from neo_support.health import health_report
from neo_support.tasking import QueueUnavailable

logger = logging.getLogger(__name__)

# Postgres or Redis unreachable (IntegrityError and the like are bugs, not outages).
SERVICE_OUTAGES = (OperationalError, InterfaceError, RedisError, QueueUnavailable)
OUTAGE_RETRY_SECONDS = 5


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database, Redis and a worker for every queue answer; 503 otherwise."""
    ok, checks = health_report()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


@never_cache
@require_GET
def healthz_live(request: HttpRequest) -> JsonResponse:
    """Liveness only: the process serves requests. For container healthchecks of the web service."""
    return JsonResponse({"status": "ok"})


def _is_api(request: HttpRequest) -> bool:
    return cast(bool, request.path.startswith("/api/"))


@csrf_exempt  # changes nothing; answers 404 whatever the method
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    return JsonResponse({"error": {"code": "not_found", "message": f"No API endpoint at {request.path}."}}, status=404)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_not_found(request)
    return render(request, "404.html", {"path": request.path}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if isinstance(sys.exc_info()[1], SERVICE_OUTAGES):  # raised outside a view (a middleware)
        return service_unavailable(request)
    if _is_api(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Something went wrong on our side; it has been logged."}},
            status=500,
        )
    return render(request, "500.html", status=500)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After while Postgres or Redis is down or restarting."""
    message = "The service is briefly unavailable (a restart or an outage); please try again in a moment."
    if _is_api(request):
        response: HttpResponse = JsonResponse({"error": {"code": "unavailable", "message": message}}, status=503)
    else:
        response = render(request, "503.html", {"message": message}, status=503)
    response["Retry-After"] = str(OUTAGE_RETRY_SECONDS)
    return response


class ServiceOutageMiddleware:
    """A view that fails because Postgres or Redis is unreachable answers 503 with
    Retry-After (JSON under /api/), not a 500: the request was fine, and asking again
    once the service is back will work. Last in MIDDLEWARE, so it sees view errors
    first; `server_error` covers the rest."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, SERVICE_OUTAGES):
            return None
        logger.warning("%s %s: service unavailable (%s)", request.method, request.path, exception)
        return service_unavailable(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: JSON under /api/, Django's page elsewhere."""
    if _is_api(request):
        message = "CSRF check failed: send an API key (Authorization: Bearer …) or the CSRF token."
        return JsonResponse({"error": {"code": "csrf_failed", "message": message}}, status=403)
    return html_csrf_failure(request, reason)
