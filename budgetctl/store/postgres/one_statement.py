"""A charge in one statement, when the ledger's rules make it a plain increment.

:func:`budgetctl.core.operations.charge` decides every charge. For most of them, its decision is
the same whatever the rows hold, as long as a few conditions on those rows are true: the user's
period (and the cap's) has not ended, no hold exists in the project, the charge crosses no alert
threshold and takes no budget over its total, and (``enforce``) it fits. Then the operation only
adds the cost (:func:`budgetctl.core.rules.charge`) and records one ``charge`` event, and the
locked transaction of the store (two round trips, the row lock held across one of them and the
Python decision) is not needed to reach it: the statement below makes the conditions part of its
``UPDATE ... WHERE``, exactly as the raw-SQL floor of bench/bench_postgres.py does with its one
condition, and the database decides them under the row lock it takes for the update.

Whenever a condition is false, nothing is written and the caller runs the locked transaction,
where the core decides (roll-over, holds, alerts, refusal). So this path decides nothing the core
would decide otherwise: it recognises the case where the core's answer is known. The contract
suite (tests/contract) runs every charge through both paths (``PostgresStore.one_statement``) and
a differential test compares them at every boundary.

Why each condition is safe under concurrency (READ COMMITTED, docs/scale-out.md):

- The conditions on a budget row are in the ``UPDATE``'s ``WHERE`` over that row's own columns. A
  concurrent transaction that changed the row first (a charge, a roll-over, a hold: every
  transaction that adds or drops a user's hold rewrites the row's ``held``) makes PostgreSQL wait
  for it and then test the ``WHERE`` again on the row as committed.
- Holds are also tested as ``NOT EXISTS`` over the project's holds; that reads the statement's
  snapshot, so a hold placed meanwhile is not seen there, but ``held`` on the user's row (and on
  the cap's row, which every hold counts against) is.
- The time of the charge is the database's clock read after both rows are locked, as in the
  locked transaction; the statement fails (and the caller falls back) if either period ended
  before that time, or if a cap row existed but was not updated.
"""

from __future__ import annotations

from functools import cache

# The columns of a budget row, as PostgresStore reads them (its _COLUMNS).
_ROW = (
    "total_budget, current_cost, model_cost, duration, timezone, start_at, created_at, "
    "period_start, next_reset_at, alert_at"
)

# A JSON number of the exact text budgetctl.core.money.to_text writes: no exponent, trailing
# zeros after the point dropped ("0.0020" -> "0.002"), "0" for zero; the amounts are >= 0.
_TEXT = (
    "CASE WHEN {x} = 0 THEN '0' WHEN strpos(({x})::text, '.') > 0 "
    "THEN rtrim(rtrim(({x})::text, '0'), '.') ELSE ({x})::text END"
)


def _conditions(table: str, enforce: bool) -> str:
    """Where the core's charge is a plain increment of this budget row."""
    new = "current_cost + %(cost)s"
    if enforce:
        spend = f"{new} <= total_budget"  # fits: no hold is open (held = 0 below)
    else:
        spend = f"NOT (current_cost <= total_budget AND total_budget < {new})"  # not going over
    return (
        f"{table}.project = %(project)s AND {table}.held = 0 "
        f"AND ({table}.next_reset_at IS NULL OR {table}.next_reset_at > {{now}}) AND {spend} "
        # no alert threshold crossed (rules.crossed_thresholds: reached after, not before)
        f"AND ({table}.alert_at IS NULL OR NOT EXISTS (SELECT 1 FROM "
        f"unnest(string_to_array({table}.alert_at, ',')::numeric[]) AS a(pct) "
        f"WHERE ({new}) * 100 >= total_budget * a.pct "
        "AND current_cost * 100 < total_budget * a.pct))"
    )


@cache
def statement(model: bool, enforce: bool, database_time: bool) -> str:
    """The charge statement. Parameters: project, user, cost, model (when ``model``), event (the
    charge's JSON with ``"time":null``), tx (a random suffix), now (unless ``database_time``).

    It returns one row (the user's budget row, then the cap's, NULL when there is none, then the
    time) when it charged, and no row when a condition was false; it fails with a not-null
    violation on ``event`` when a time or cap check after the locks fails (nothing is written).
    """
    now = "clock_timestamp()" if database_time else "%(now)s::timestamptz"
    # the history row's tx starts with the database's clock, as the locked transaction's does
    clock, tx_time = ("", "s.at") if database_time else (", clock_timestamp() AS clock", "s.clock")
    sets = "current_cost = current_cost + %(cost)s"
    if model:
        old = "coalesce((model_cost::jsonb ->> %(model)s)::numeric, 0)"
        sets += (
            ", model_cost = jsonb_set(model_cost::jsonb, ARRAY[%(model)s]::text[], "
            f"to_jsonb({_TEXT.format(x=f'{old} + %(cost)s')}))::text"
        )
    u_cols = ", ".join(f"u.{c.strip()} AS u_{c.strip()}" for c in _ROW.split(","))
    c_cols = ", ".join(f"c.{c.strip()} AS c_{c.strip()}" for c in _ROW.split(","))
    when = (
        "(s.c_total_budget IS NOT NULL OR NOT EXISTS "
        "(SELECT 1 FROM budgetctl_caps WHERE project = %(project)s)) "
        "AND (s.u_next_reset_at IS NULL OR s.at < s.u_next_reset_at) "
        "AND (s.c_next_reset_at IS NULL OR s.at < s.c_next_reset_at)"
    )
    utc = "s.at AT TIME ZONE 'UTC'"
    time_text = (
        f"regexp_replace(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '\\.000000$', '') || 'Z'"
    )
    return (
        "WITH u AS (UPDATE budgetctl_budgets SET "
        + sets
        + " WHERE "
        + _conditions("budgetctl_budgets", enforce).format(now=now)
        + " AND budgetctl_budgets.name = %(user)s "
        "AND NOT EXISTS (SELECT 1 FROM budgetctl_holds WHERE project = %(project)s) "
        f"RETURNING {_ROW}), "
        "c AS (UPDATE budgetctl_caps SET current_cost = current_cost + %(cost)s WHERE "
        + _conditions("budgetctl_caps", enforce).format(now=now)
        + f" AND EXISTS (SELECT 1 FROM u) RETURNING {_ROW}), "
        # the clock after both locks (a CTE read twice is evaluated once)
        f"s AS (SELECT {u_cols}, {c_cols}, {now} AS at{clock} FROM u LEFT JOIN c ON true), "
        "h AS (INSERT INTO budgetctl_history (project, at, tx, ord, name, type, cost, event) "
        "SELECT %(project)s, s.at, "
        f"to_char({tx_time} AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || '-' || %(tx)s, "
        "0, %(user)s, 'charge', %(cost)s, "
        f"CASE WHEN {when} THEN replace(%(event)s, '\"time\":null', "
        f"'\"time\":\"' || {time_text} || '\"') END FROM s) "
        f"SELECT {', '.join('s.u_' + c.strip() for c in _ROW.split(','))}, "
        f"{', '.join('s.c_' + c.strip() for c in _ROW.split(','))}, s.at FROM s"
    )
