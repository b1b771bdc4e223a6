"""The audit log of staff actions: `record` writes one entry, `delete_expired` is the
retention's one way to remove entries. Entries are append-only (neo_support.models.AuditEntry).

Who acted and from where come from the request being served (set by
`neo_support.audit.context.AuditRequestMiddleware`): the signed-in user, or the API key a
REST call authenticated with. Outside a request (a task, a management command) the actor
is "system" unless the caller names one."""

from __future__ import annotations

from neo_support.audit.recording import changes, delete_expired, record, snapshot

__all__ = ["changes", "delete_expired", "record", "snapshot"]
