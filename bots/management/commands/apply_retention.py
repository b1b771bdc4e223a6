"""`manage.py apply_retention`: the hourly retention pass, now (the embedded default runs
no beat: call this from cron there)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bots.privacy.retention import retention_apply_all


class Command(BaseCommand):
    help = "Delete what each organization's retention policy says has expired, and print the counts."

    def handle(self, *args: Any, **options: Any) -> None:
        results = retention_apply_all()
        if not results:
            self.stdout.write("No organization limits how long anything is kept.")
        for organization_id, deleted in results.items():
            counts = ", ".join(f"{kind} {count}" for kind, count in deleted.items()) or "nothing expired"
            self.stdout.write(f"organization {organization_id}: {counts}")
