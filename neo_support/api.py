"""The one error format of the REST API: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_error(code: str, message: str, http_status: int, **details: Any) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return Response({"error": body}, status=http_status)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as {"error": {"code", "message", "details"?}}."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    detail = response.data
    if isinstance(detail, dict) and set(detail) == {"detail"}:
        error = api_error(str(code), str(detail["detail"]), response.status_code)
    else:
        message = "The request is invalid." if response.status_code == status.HTTP_400_BAD_REQUEST else str(exc)
        error = api_error(str(code), message, response.status_code, fields=detail)
    for header in ("WWW-Authenticate", "Retry-After"):
        if header in response:
            error[header] = response[header]
    return error


class ApiPages(PageNumberPagination):
    """`?page=N&page_size=M` (at most 200); answers {"count", "next", "previous", "results"}."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class EventStreamRenderer(BaseRenderer):
    """Lets a client ask for `Accept: text/event-stream`; views stream the events
    themselves, and anything else (an error) goes out as one `error` event."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        body = data.get("error", data) if isinstance(data, dict) else data
        return f"event: error\ndata: {json.dumps(body, ensure_ascii=False, default=str)}\n\n".encode()
