"""The PostgreSQL schema, versioned: ``budgetctl db migrate`` applies what a database lacks.

Portable SQL only (docs/scale-out.md): plain tables with natural primary keys that lead with the
project (so Citus can distribute every table by it), ``numeric`` money, ``timestamptz`` times,
text for JSON. No sequences as keys, no triggers, stored procedures, advisory locks or
LISTEN/NOTIFY, so CockroachDB and YugabyteDB run it too.
"""

from __future__ import annotations

VERSION_TABLE = "budgetctl_schema"

_RECORD = """
    total_budget numeric NOT NULL,
    current_cost numeric NOT NULL,
    model_cost text NOT NULL DEFAULT '{}',
    duration text,
    timezone text NOT NULL DEFAULT 'UTC',
    start_at timestamptz,
    created_at timestamptz NOT NULL,
    period_start timestamptz NOT NULL,
    next_reset_at timestamptz,
    alert_at numeric"""

# Each migration is a list of statements, applied in one transaction with its version row.
MIGRATIONS: list[list[str]] = [
    [
        f"CREATE TABLE {VERSION_TABLE} (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL)",
        "CREATE TABLE budgetctl_projects (project text PRIMARY KEY, "
        "created_at timestamptz NOT NULL)",
        f"CREATE TABLE budgetctl_budgets (project text NOT NULL, name text NOT NULL,{_RECORD},"
        " PRIMARY KEY (project, name))",
        "CREATE INDEX budgetctl_budgets_due ON budgetctl_budgets (project, next_reset_at)",
        f"CREATE TABLE budgetctl_caps (project text PRIMARY KEY,{_RECORD})",
        "CREATE TABLE budgetctl_holds (project text NOT NULL, hold_id text NOT NULL, "
        "name text NOT NULL, amount numeric NOT NULL, created_at timestamptz NOT NULL, "
        "expires_at timestamptz NOT NULL, PRIMARY KEY (project, hold_id))",
        "CREATE TABLE budgetctl_request_ids (project text NOT NULL, key text NOT NULL, "
        "name text NOT NULL, cost numeric NOT NULL, model text, prompt_tokens bigint NOT NULL, "
        "completion_tokens bigint NOT NULL, cached_tokens bigint NOT NULL, "
        "seen_at timestamptz NOT NULL, PRIMARY KEY (project, key))",
        # History: insert only. Ordered by (at, tx, ord): at is the database's clock read after
        # the transaction's row locks, so events touching one row are in commit order.
        "CREATE TABLE budgetctl_history (project text NOT NULL, at timestamptz NOT NULL, "
        "tx text NOT NULL, ord integer NOT NULL, name text, type text NOT NULL, cost numeric, "
        "event text NOT NULL, PRIMARY KEY (project, at, tx, ord))",
        "CREATE INDEX budgetctl_history_name ON budgetctl_history (project, name, at)",
        "CREATE TABLE budgetctl_prices (project text NOT NULL, model text NOT NULL, "
        "price text NOT NULL, PRIMARY KEY (project, model))",
    ],
    # 2 (issue 13): several alert thresholds ("50,80,100"; one stays "80"), hooks, and their
    # outbox: a delivery is inserted with the charge that recorded its event, deleted once made.
    [
        "ALTER TABLE budgetctl_budgets ALTER COLUMN alert_at TYPE text USING alert_at::text",
        "ALTER TABLE budgetctl_caps ALTER COLUMN alert_at TYPE text USING alert_at::text",
        "CREATE TABLE budgetctl_hooks (project text NOT NULL, hook_id text NOT NULL, "
        "hook text NOT NULL, PRIMARY KEY (project, hook_id))",
        "CREATE TABLE budgetctl_outbox (project text NOT NULL, event_id text NOT NULL, "
        "hook_id text NOT NULL, queued_at timestamptz NOT NULL, payload text NOT NULL, "
        "PRIMARY KEY (project, event_id, hook_id))",
    ],
    # 3: what the holds of a user (of the project, on the cap's row) reserve, kept on the budget's
    # own row by every transaction that adds or drops a hold, so that a charge decided in one
    # statement (one_statement.py) sees a hold placed concurrently (docs/scale-out.md).
    [
        "ALTER TABLE budgetctl_budgets ADD COLUMN held numeric NOT NULL DEFAULT 0",
        "ALTER TABLE budgetctl_caps ADD COLUMN held numeric NOT NULL DEFAULT 0",
        "UPDATE budgetctl_budgets b SET held = h.amount FROM (SELECT project, name, sum(amount) "
        "AS amount FROM budgetctl_holds GROUP BY project, name) h "
        "WHERE b.project = h.project AND b.name = h.name",
        "UPDATE budgetctl_caps c SET held = h.amount FROM (SELECT project, sum(amount) AS amount "
        "FROM budgetctl_holds GROUP BY project) h WHERE c.project = h.project",
    ],
    # 4: whether the project has a cap, on every budget row, set on all of them by the
    # transaction that sets a cap where there was none (or clears it): a charge decided in one
    # statement and waiting for a row that transaction locked then sees the cap it cannot see in
    # its snapshot (docs/scale-out.md).
    [
        "ALTER TABLE budgetctl_budgets ADD COLUMN capped boolean NOT NULL DEFAULT false",
        "UPDATE budgetctl_budgets b SET capped = true "
        "WHERE EXISTS (SELECT 1 FROM budgetctl_caps c WHERE c.project = b.project)",
    ],
]

VERSION = len(MIGRATIONS)
