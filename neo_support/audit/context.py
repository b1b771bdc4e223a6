"""The request being served, for the audit log's actor and address. Set for the length of
each HTTP request by `AuditRequestMiddleware`; empty in tasks and commands."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

_current_request: ContextVar[HttpRequest | None] = ContextVar("neo_audit_request", default=None)


@dataclass(frozen=True)
class Actor:
    kind: str  # "user", "api_key", "anonymous" (a signed-out visitor) or "system"
    id: int | None
    label: str


SYSTEM = Actor(kind="system", id=None, label="system")
ANONYMOUS = Actor(kind="anonymous", id=None, label="anonymous")


def current_request() -> HttpRequest | None:
    return _current_request.get()


def client_ip(request: HttpRequest) -> str | None:
    """The peer's address as the server sees it (REMOTE_ADDR; a proxy in front should set it)."""
    address = request.META.get("REMOTE_ADDR") or None
    return str(address) if address else None


class AuditRequestMiddleware:
    """Makes the request visible to `neo_support.audit.record` while it is served."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)
