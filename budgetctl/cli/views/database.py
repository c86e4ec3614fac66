"""The database's schema: ``db status`` and ``db migrate``."""

from __future__ import annotations

from budgetctl.cli.report import Report
from budgetctl.database import Migration, SchemaStatus


def status(found: SchemaStatus) -> Report:
    report = Report(
        {
            "database": found.database,
            "version": found.version,
            "needed": found.needed,
            "migrate_needed": found.migrate_needed,
        }
    )
    report.line(f"database: {found.database}")
    have = "none (no budgetctl tables)" if found.version == 0 else str(found.version)
    report.line(f"schema version: {have}; this budgetctl needs {found.needed}")
    if found.migrate_needed:
        report.line("run 'budgetctl db migrate' to create or upgrade the tables")
    elif found.too_new:
        report.line("the database is newer than this budgetctl: upgrade budgetctl")
    else:
        report.line("up to date")
    return report


def migrated(done: Migration) -> Report:
    report = Report({"database": done.database, "before": done.before, "after": done.after})
    if done.after == done.before:
        return report.line(f"{done.database}: schema version {done.after}, already up to date")
    return report.line(
        f"{done.database}: schema version {done.before} -> {done.after}"
        + (" (tables created)" if done.before == 0 else "")
    )
