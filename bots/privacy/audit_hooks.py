"""Where the audit log (issue 20, part 3) hears about privacy actions: each hook is
called with (action, organization, user or None, details). Empty until the audit log
registers itself; the actions are "person.export", "person.erase" and "retention.update"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from neo_support.models import Organization

AUDIT_HOOKS: list[Callable[[str, Organization, Any, dict[str, Any]], None]] = []


def audit(action: str, *, organization: Organization, by: Any, details: dict[str, Any]) -> None:
    user = by if getattr(by, "is_authenticated", False) else None
    for hook in AUDIT_HOOKS:
        hook(action, organization, user, details)
