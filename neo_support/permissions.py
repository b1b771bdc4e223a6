"""Who may do what: one table of areas × roles, read by the dashboard and the REST API.

Owners and admins do everything. Agents work the inbox and conversations. Viewers read
everything but API keys and the audit log (which names people, addresses and keys). An
API key acts for its organization within its scopes (`<area>:read`, `<area>:write`); a
key with no scopes has full access (keys made before scopes existed).
"""

from __future__ import annotations

from enum import StrEnum


class Area(StrEnum):
    BOTS = "bots"
    KNOWLEDGE = "knowledge"
    CONVERSATIONS = "conversations"
    TICKETS = "tickets"
    ANALYTICS = "analytics"
    WEBHOOKS = "webhooks"
    MODERATION = "moderation"
    TEAM = "team"
    API_KEYS = "api_keys"
    SETTINGS = "settings"
    AUDIT = "audit"
    # A person's data (find, export, erase) and retention: owners only.
    PRIVACY = "privacy"


# Areas an API key can be scoped to; the rest are managed in the dashboard only.
KEY_AREAS = (
    Area.BOTS,
    Area.KNOWLEDGE,
    Area.CONVERSATIONS,
    Area.TICKETS,
    Area.ANALYTICS,
    Area.WEBHOOKS,
    Area.AUDIT,
    Area.PRIVACY,
    Area.MODERATION,
)
# Analytics, the audit log and the moderation summary are read-only; everything else an API
# key reaches can also be written.
READ_ONLY_AREAS = (Area.ANALYTICS, Area.AUDIT, Area.MODERATION)
API_SCOPES = tuple(
    f"{area}:{access}"
    for area in KEY_AREAS
    for access in ("read", "write")
    if not (access == "write" and area in READ_ONLY_AREAS)
)

_AGENT_AREAS = {Area.CONVERSATIONS, Area.TICKETS}


def role_may(role: str, area: str, *, write: bool) -> bool:
    """Whether a member with `role` may read (or, with `write`, change) `area`."""
    if area == Area.PRIVACY:
        return role == "owner"
    if role in ("owner", "admin"):
        return True
    if role == "agent":
        return area in _AGENT_AREAS
    if role == "viewer":
        return not write and area not in (Area.API_KEYS, Area.AUDIT)
    return False


def scopes_allow(scopes: list[str], area: str, *, write: bool) -> bool:
    """Whether an API key with `scopes` may read (or change) `area`; write implies read."""
    if not scopes:
        return True
    if f"{area}:write" in scopes:
        return True
    return not write and f"{area}:read" in scopes
