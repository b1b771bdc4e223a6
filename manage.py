#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neo_support.settings")
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    from neo_support.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    except DatabaseError:
        # A failing migration is migrate's own error; anything else on an unmigrated
        # database would end in "no such table".
        pending = _pending_migrations() if sys.argv[1:2] != ["migrate"] else []
        if not pending:
            raise
        print(
            f"The database is not set up ({len(pending)} migrations not applied, first {pending[0]}): "
            "run `make migrate` or `python manage.py migrate`, then try again.",
            file=sys.stderr,
        )
        sys.exit(2)


def _pending_migrations() -> list[str]:
    """The migrations not yet applied to the default database, as "app.name"; empty when
    all are applied or the database cannot be read at all (its own error is clearer)."""
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return []
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


if __name__ == "__main__":
    main()
