"""Privacy actions in the organization's audit log (neo_support.audit): "person.export",
"person.erase" and "retention.update". Entries name what was done, never the person's
identifiers (an erasure is named by its masked hint)."""

from __future__ import annotations

from typing import Any

from neo_support import audit as audit_log
from neo_support.models import Organization


def audit(action: str, *, organization: Organization, by: Any, details: dict[str, Any]) -> None:
    """Record `action` by `by` (a user, an API key, or None for the request's actor);
    `details` holds "before"/"after" for a settings change, else what the action covered."""
    before = details.get("before")
    after = details.get("after") if "after" in details else details or None
    audit_log.record(
        organization=organization,
        action=action,
        target_kind="privacy",
        target_id=details.get("erasure"),
        actor=by if getattr(by, "is_authenticated", False) else None,
        before=before,
        after=after,
    )
