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
- A cap set where there was none is not in the snapshot either: the transaction that sets it
  locks every budget row of the project and sets ``capped`` on all of them, so the statement
  that expects no cap (``NOT capped``) finds no row, and the one that charges a cap fails unless
  it charged one exactly when the user's row says ``capped``.
- The time of the charge is the database's clock read after both rows are locked, as in the
  locked transaction; the statement fails (and the caller falls back) if either period ended
  before that time, or if a cap row existed but was not updated.
"""

from __future__ import annotations

import re
import zlib
from functools import cache
from json.encoder import encode_basestring_ascii as _quoted  # as json.dumps writes a str

from budgetctl.core.money import to_text
from budgetctl.core.rules import ChargeRequest

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


def _conditions(table: str, enforce: bool, alerts: bool) -> str:
    """Where the core's charge is a plain increment of this budget row. Without ``alerts``, for
    a row the store saw without alert thresholds: the row must have none (a plain test; the
    test of thresholds is a subquery, which costs the server even where it never runs)."""
    new = "current_cost + %(cost)s"
    if enforce:
        spend = f"{new} <= total_budget"  # fits: no hold is open (held = 0 below)
    else:
        spend = f"NOT (current_cost <= total_budget AND total_budget < {new})"  # not going over
    if alerts:
        # no alert threshold crossed (rules.crossed_thresholds: reached after, not before)
        alert = (
            f"({table}.alert_at IS NULL OR NOT EXISTS (SELECT 1 FROM "
            f"unnest(string_to_array({table}.alert_at, ',')::numeric[]) AS a(pct) "
            f"WHERE ({new}) * 100 >= total_budget * a.pct "
            "AND current_cost * 100 < total_budget * a.pct))"
        )
    else:
        alert = f"{table}.alert_at IS NULL"
    return (
        f"{table}.project = %(project)s AND {table}.held = 0 "
        f"AND ({table}.next_reset_at IS NULL OR {table}.next_reset_at > {{now}}) AND {spend} "
        f"AND {alert}"
    )


@cache
def statement(
    model: bool,
    enforce: bool,
    database_time: bool,
    cap: bool = True,
    user_alerts: bool = True,
    cap_alerts: bool = True,
) -> str:
    """The charge statement. Parameters: project, user, cost, model (when ``model``), event (the
    charge's JSON with ``"time":null``), tx (a random suffix), now (unless ``database_time``).

    It returns one row (the user's budget row, then the cap's, NULL when there is none, then the
    time) when it charged, and no row when a condition was false; it fails with a not-null
    violation on ``event`` when a time or cap check after the locks fails (nothing is written).

    Without ``cap``, the statement is for a project the store saw without a cap: it neither
    updates nor returns a cap row (the user's row, then the time): the user's row must say
    there is no cap (``capped``), and the statement fails if the project has one after all.
    Without ``user_alerts`` (``cap_alerts``), the user's (the cap's) row must have no alert
    thresholds, else nothing is written and no row returned.
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
    columns = [c.strip() for c in _ROW.split(",")]
    selected = [f"u.{c} AS u_{c}" for c in columns]
    returned = [f"s.u_{c}" for c in columns]
    no_cap = "NOT EXISTS (SELECT 1 FROM budgetctl_caps WHERE project = %(project)s)"
    when = "(s.u_next_reset_at IS NULL OR s.at < s.u_next_reset_at)"
    cap_update = ""
    user_row = "" if cap else " AND NOT budgetctl_budgets.capped"
    if cap:
        selected += ["u.capped AS u_capped"] + [f"c.{c} AS c_{c}" for c in columns]
        returned += [f"s.c_{c}" for c in columns]
        # the cap's row was charged if and only if the user's row says there is a cap (a cap
        # set while the statement waited for the user's row: not in its snapshot, but capped
        # on the row), and there is none if it was not (a cap that refused)
        when = (
            f"(s.c_total_budget IS NOT NULL) = s.u_capped "
            f"AND (s.c_total_budget IS NOT NULL OR {no_cap}) AND {when} "
            "AND (s.c_next_reset_at IS NULL OR s.at < s.c_next_reset_at)"
        )
        cap_update = (
            "c AS (UPDATE budgetctl_caps SET current_cost = current_cost + %(cost)s WHERE "
            + _conditions("budgetctl_caps", enforce, cap_alerts).format(now=now)
            + f" AND EXISTS (SELECT 1 FROM u) RETURNING {_ROW}), "
        )
    else:
        when = f"{no_cap} AND {when}"
    utc = "s.at AT TIME ZONE 'UTC'"
    time_text = (
        f"regexp_replace(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '\\.000000$', '') || 'Z'"
    )
    return (
        "WITH u AS (UPDATE budgetctl_budgets SET "
        + sets
        + " WHERE "
        + _conditions("budgetctl_budgets", enforce, user_alerts).format(now=now)
        + user_row
        + " AND budgetctl_budgets.name = %(user)s "
        "AND NOT EXISTS (SELECT 1 FROM budgetctl_holds WHERE project = %(project)s) "
        f"RETURNING {_ROW}{', capped' if cap else ''}), "
        + cap_update
        # the clock after both locks (a CTE read twice is evaluated once)
        + f"s AS (SELECT {', '.join(selected)}, {now} AS at{clock} FROM u"
        + (" LEFT JOIN c ON true), " if cap else "), ")
        + "h AS (INSERT INTO budgetctl_history (project, at, tx, ord, name, type, cost, event) "
        "SELECT %(project)s, s.at, "
        f"to_char({tx_time} AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') || '-' || %(tx)s, "
        "0, %(user)s, 'charge', %(cost)s, "
        f"CASE WHEN {when} THEN replace(%(event)s, '\"time\":null', "
        f"'\"time\":\"' || {time_text} || '\"') END FROM s) "
        f"SELECT {', '.join(returned)}, s.at FROM s"
    )


# The type of each parameter, as the statement is prepared (PostgreSQL type OIDs): the amounts
# are numeric, the time timestamptz, every other parameter text.
_TYPES = {"cost": 1700, "now": 1184}
_TEXT_OID = 25


@cache
def prepared(*variant: bool) -> tuple[bytes, bytes, tuple[str, ...], tuple[int, ...]]:
    """:func:`statement` (``variant``: its arguments) as the store prepares it: its name in the
    session, its text with ``$n`` placeholders, the parameters' names in the order of ``$n``,
    and their types."""
    text = statement(*variant)
    names = tuple(dict.fromkeys(re.findall(r"%\((\w+)\)s", text)))
    for number, name in enumerate(names, start=1):
        text = text.replace(f"%({name})s", f"${number}")
    assert "%" not in text, "a placeholder was left"
    # named by its text: a session that already has this name (a pooler's, handed over) has
    # this statement, and another budgetctl's statement never runs under it
    key = f"budgetctl_charge_{zlib.crc32(text.encode()):08x}"
    types = tuple(_TYPES.get(name, _TEXT_OID) for name in names)
    return key.encode(), text.encode(), names, types


def event(request: ChargeRequest) -> str:
    """The charge's event as the history keeps it, with ``"time":null`` (the statement writes
    the time): the text of ``json.dumps(events.Charge(None, *request).to_json(),
    separators=(",", ":"))``, written directly, in a fifth of its time (tests hold the two
    equal for any request)."""
    user, cost, model, prompt, completion, cached, request_id, estimated = request
    text = (
        '{"type":"charge","time":null,"user":'
        + _quoted(user)
        + ',"model":'
        + ("null" if model is None else _quoted(model))
        + ',"cost":"'
        + to_text(cost)
        + '","prompt_tokens":'
        + int.__repr__(prompt)
        + ',"completion_tokens":'
        + int.__repr__(completion)
        + ',"cached_tokens":'
        + int.__repr__(cached)
    )
    if request_id is not None:
        text += ',"request_id":' + _quoted(request_id)
    if estimated:
        text += ',"estimated":true'
    return text + "}"
