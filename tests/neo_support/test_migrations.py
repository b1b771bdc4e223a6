from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_every_model_change_has_a_migration() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_a_command_on_a_database_never_migrated_says_to_migrate(tmp_path: Path) -> None:
    """A newcomer who runs a command before `make run` gets what to do, not "no such table"."""
    environment = {
        **os.environ,
        "NEO_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        "HF_HUB_OFFLINE": "1",
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    result = subprocess.run(
        [*manage, "apply_retention"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "The database is not set up" in result.stderr
    assert "python manage.py migrate" in result.stderr
    assert "Traceback" not in result.stderr
    # Once migrated, the same command runs.
    subprocess.run([*manage, "migrate", "-v0"], env=environment, check=True, timeout=300)
    after = subprocess.run(
        [*manage, "apply_retention"], env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    assert after.returncode == 0, after.stderr
