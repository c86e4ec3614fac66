"""Spend totals summed by PostgreSQL, for ``report``: one ``GROUP BY`` over the ``charge`` and
``commit`` rows of a range, so no row crosses the connection (reads only; nothing here writes).

A history row's ``name`` is its event's user and ``cost`` its cost (``events.subject``,
``events.spend``, written with the event); the rest comes out of the event's JSON, which is
``json.dumps`` of ``to_json`` (compact, ASCII): it starts ``{"type":"charge","time":"`` (or
``commit``), so the time is at character 26, and a key in quotes cannot occur inside a string
(a quote in a value is escaped), so ``split_part`` on ``,"prompt_tokens":`` finds the key, and
the value is the text up to the next ``,`` or ``}``. A row in any other shape (counted by a
``LIKE``) or whose values do not cast (a token count that is not an integer) makes the answer
None, and the caller reads the rows one by one (:func:`budgetctl.store.spend.parse`), which read
every shape or say what is wrong.

Keys (:data:`KEYS`): ``user``; ``model`` (its JSON text decoded here, so ``null`` is None);
``day`` and ``hour``, the event's UTC time's first 10 and 13 characters (``2026-11-30``,
``2026-11-30T09``), for which a row without a time counts nowhere. A range is the history's:
``at`` bounds the query (an index), the event's own time decides (as ``history`` does).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import localcontext
from typing import TYPE_CHECKING, Any

from budgetctl.core.money import EXACT
from budgetctl.store.spend import add_sums

if TYPE_CHECKING:
    from budgetctl.store.postgres.store import PostgresStore

KEYS = ("user", "model", "day", "hour")
Sums = list[Any]  # [charges, cost, prompt tokens, completion tokens, cached tokens]

# The event's JSON starts '{"type":"charge","time":"' (or commit, as long): its time is at 26.
_TIME = """split_part(substr(event, 26, 28), '"', 1)"""
_GROUPS = {
    "user": "name",
    "model": """split_part(split_part(event, ',"model":', 2), ',"cost":', 1)""",
    "day": "substr(event, 26, 10)",
    "hour": "substr(event, 26, 13)",
}
_TOKENS = """split_part(split_part(event, ',"prompt_tokens":', 2), ',', 1)::bigint,
    split_part(split_part(event, ',"completion_tokens":', 2), ',', 1)::bigint,
    split_part(split_part(split_part(event, ',"cached_tokens":', 2), ',', 1), '}', 1)::bigint"""


def totals(
    store: PostgresStore,
    key: str,
    user: str | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[Any, Sums] | None:
    """Each ``key``'s sums of the spend of ``user`` (or everyone) in [since, until); None when a
    row is not in the shape this reads (the caller reads the rows instead)."""
    from budgetctl.store.postgres.store import _import_psycopg, history_rows

    where, params = history_rows(store.project, user, since, until, spend=True)
    # The range on the event's own time (``at`` is never earlier; later in a restored history),
    # worked out once a row, and every group counted with how many of its rows are inside it.
    inside: list[str] = []
    bounds: list[Any] = []
    if since is not None:
        inside.append(f"{_TIME}::timestamptz >= %s")
        bounds.append(since)
    if until is not None:
        inside.append(f"{_TIME}::timestamptz < %s")
        bounds.append(until)
    columns = ["count(*)", "sum(cost)", "sum(prompt)", "sum(completion)", "sum(cached)"]
    if inside:
        columns = [f"{one} FILTER (WHERE inside)" for one in columns]
    query = (
        f"SELECT grouped, {', '.join(columns)}, count(*) FILTER (WHERE NOT shaped) "
        f"FROM (SELECT {_GROUPS[key]}, cost, {' AND '.join(inside) or 'true'}, {_TOKENS}, "
        f"{_SHAPED} FROM budgetctl_history WHERE {where}) "
        "AS spend (grouped, cost, inside, prompt, completion, cached, shaped) GROUP BY grouped"
    )
    params = bounds + params
    psycopg = _import_psycopg()
    try:
        with store._reading() as conn:
            store._require_project(conn)
            rows = conn.execute(query, params).fetchall()
    except psycopg.DataError:  # a row this cannot read: a token that is no integer, a bad time
        return None
    if any(row[6] for row in rows):
        return None  # a row not written as to_json writes (or from before 0.2: no time)
    found: dict[Any, Sums] = {}
    with localcontext(EXACT):
        for grouped, charges, cost, prompt, completion, cached, _ in rows:
            if not charges:
                continue  # every row of the group outside the range
            if key == "model":
                try:
                    grouped = None if grouped == "null" else json.loads(grouped)
                except ValueError:
                    return None
                if grouped is not None and not isinstance(grouped, str):
                    return None
            # one model written two ways ("é", "\u00e9") is one key: added up
            add_sums(found, grouped, [charges, cost, int(prompt), int(completion), int(cached)])
    return found


# Compact JSON as to_json's dict gives it: "type" first, then "time" (format_utc's, so ending in
# Z), then "user"; a row in another shape (a time of null, before 0.2) makes the caller read rows.
_SHAPED = (
    """(event LIKE '{"type":"charge","time":"____-__-__T__:__:__%%Z","user":"%%' """
    """OR event LIKE '{"type":"commit","time":"____-__-__T__:__:__%%Z","user":"%%')"""
)  # %% is a % once psycopg has put the parameters in
