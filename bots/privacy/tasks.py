"""Privacy tasks. Thin: reload the row, return quietly if it is gone, call one service."""

from __future__ import annotations

from bots.models import PersonErasure
from bots.privacy.erasure import person_erasure_run
from bots.privacy.retention import retention_apply_all
from neo_support.tasking import task


@task(queue="default", name="bots.privacy.tasks.erase_person")
def erase_person(erasure_id: int) -> str:
    """Erase a person (bots.privacy.erasure). Delivered again after a worker died, it
    resumes where the committed progress says; for a finished erasure it does nothing."""
    erasure = PersonErasure.objects.select_related("organization").filter(pk=erasure_id).first()
    if erasure is None:
        return "gone"
    return person_erasure_run(erasure=erasure)


@task(queue="default", name="bots.privacy.tasks.apply_retention")
def apply_retention() -> dict[int, dict[str, int]]:
    """Beat, hourly: delete what each organization's retention policy says has expired."""
    return retention_apply_all()
