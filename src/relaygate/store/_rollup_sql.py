"""The SQL of the dashboard's schema step: roll-ups of the calls, a row per thread, and the calls' list indexes.

Reading the figures of a month straight from ``calls`` scans every call of the month (a second and more
on a million calls), so the figures are also kept summed as the calls are written, in the same transaction
as the calls (``_rollup_rows.py``: a batch is summed in Python and upserted once per distinct row):

- ``call_rollups``: per project, ``span`` (``hour``, ``day``, ``week``; ``4week`` from the next step),
  dimension and bucket, the sums the figures are made of (:data:`~relaygate.store._sql_rows.AGGREGATES`,
  same order). ``dim`` is ``all`` (one row per bucket), ``provider``, ``model`` (``provider/model``),
  ``user``, ``label``, ``key`` or ``latency`` (a histogram: ``value`` is the latency's bin, see
  :func:`relaygate.store.rollups.latency_bin`); from the next step also ``own_all``, ``own_key``,
  ``own_user`` and ``own_model``, for the calls paid with the caller's own provider key only. ``value`` is
  ``''`` for a call without one and ``'='`` followed by the value otherwise, so that no value is NULL in the
  primary key (NULLs never conflict).
- ``threads``: per thread, its first start, last end, number of calls and cost, as the management API's
  thread list reports them.

The migration rolls up the calls already stored with the statements below (generated once per backend).
It belongs to a migration that has shipped once released: change the schema with a new step, never by
editing these.
"""

from __future__ import annotations

__all__ = [
    "OWN_KEY_DIMS",
    "POSTGRES_OWN_KEY_STATEMENTS",
    "POSTGRES_ROLLUP_STATEMENTS",
    "ROLLUP_COLUMNS",
    "ROLLUP_CONFLICT",
    "SQLITE_OWN_KEY_STATEMENTS",
    "SQLITE_ROLLUP_STATEMENTS",
    "latency_lead",
]

_SUMS = (
    "calls, errors, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cache_write_tokens, "
    "reasoning_tokens, cost_nanos, latency_us, ttft_us, ttft_count"
)
ROLLUP_COLUMNS = f"project_id, span, dim, bucket_start, value, {_SUMS}"


def latency_lead(lead: str) -> str:
    """The bin of a latency's first two digits (``lead``, an integer expression), as ``rollups._lead`` has it."""
    return f"(CASE WHEN {lead} < 20 THEN {lead} WHEN {lead} < 50 THEN {lead} - {lead} % 2 ELSE {lead} - {lead} % 5 END)"


def _dims(row: str) -> list[tuple[str, str]]:
    """(dimension, value expression) for a row of calls named ``row``, as ``_rollup_rows.py`` computes them."""

    def opt(column: str) -> str:
        return f"CASE WHEN {row}.{column} IS NULL THEN '' ELSE '=' || {row}.{column} END"

    latency = f"CAST({row}.latency_us AS TEXT)"
    lead = f"CAST(substr({latency}, 1, 2) AS INTEGER)"
    return [
        ("all", "''"),
        ("provider", f"'=' || {row}.provider"),
        ("model", f"'=' || {row}.provider || '/' || {row}.model"),
        ("user", opt("user_id")),
        ("label", opt("label")),
        ("key", opt("key_id")),
        # The latency in microseconds as "digits:bin of its first two digits" (bins of at most 10%).
        ("latency", f"'=' || length({latency}) || ':' || {latency_lead(lead)}"),
    ]


_GROUP_SUMS = (
    "COUNT(*), SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END), SUM(prompt_tokens), "
    "SUM(completion_tokens), SUM(total_tokens), SUM(cached_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), "
    "COALESCE(SUM(cost_nanos), 0), SUM(latency_us), COALESCE(SUM(ttft_us), 0), COUNT(ttft_us)"
)
_ADD = ", ".join(f"{c} = call_rollups.{c} + excluded.{c}" for c in _SUMS.split(", "))
ROLLUP_CONFLICT = f"ON CONFLICT (project_id, span, dim, bucket_start, value) DO UPDATE SET {_ADD}"


def _backfill(spans: dict[str, str]) -> list[str]:
    """Roll-ups of the calls stored before the roll-ups existed, one statement per span and dimension."""
    return [
        f"INSERT INTO call_rollups ({ROLLUP_COLUMNS}) SELECT project_id, '{span}', '{dim}', {bucket}, {value}, "
        f"{_GROUP_SUMS} FROM calls GROUP BY 1, 4, 5"
        for span, bucket in spans.items()
        for dim, value in _dims("calls")
    ]


# Integer microseconds since the epoch; weeks from Monday 1970-01-05 (ISO weeks, as the store's week buckets).
_SQLITE_SPANS = {
    "week": "((started_at - 345600000000) / 604800000000) * 604800000000 + 345600000000",
    "day": "(started_at / 86400000000) * 86400000000",
    "hour": "(started_at / 3600000000) * 3600000000",
}
_THREAD_BACKFILL = (
    "INSERT INTO threads (project_id, thread_id, first_seen, last_seen, calls, cost_nanos) "
    "SELECT project_id, thread_id, MIN(started_at), MAX(ended_at), COUNT(*), COALESCE(SUM(cost_nanos), 0) "
    "FROM calls WHERE thread_id IS NOT NULL GROUP BY project_id, thread_id"
)
_INDEXES = (
    # The calls list, newest first (ties by id), filtered by one of these (a time filter is the range on
    # started_at). Each ends with (started_at, id), the list's order, so a page is read straight off the index.
    "DROP INDEX calls_project_started",
    "CREATE INDEX calls_project_started ON calls (project_id, started_at, id)",
    "CREATE INDEX calls_project_model_started ON calls (project_id, provider, model, started_at, id)",
    "CREATE INDEX calls_project_user_started ON calls (project_id, user_id, started_at, id)",
    "CREATE INDEX calls_project_label_started ON calls (project_id, label, started_at, id)",
    "CREATE INDEX calls_project_thread_started ON calls (project_id, thread_id, started_at, id)",
    "DROP INDEX calls_project_thread",
    # Failed calls are few: a partial index finds the newest of them without walking past the others.
    "CREATE INDEX calls_project_failed_started ON calls (project_id, started_at, id) "
    "WHERE status >= 400 OR error IS NOT NULL",
    "CREATE INDEX threads_project_recent ON threads (project_id, last_seen, thread_id)",
)

SQLITE_ROLLUP_STATEMENTS: tuple[str, ...] = (
    f"""
    CREATE TABLE call_rollups (
        project_id TEXT NOT NULL,
        span TEXT NOT NULL,
        dim TEXT NOT NULL,
        bucket_start INTEGER NOT NULL,
        value TEXT NOT NULL,
        {", ".join(f"{c} INTEGER NOT NULL" for c in _SUMS.split(", "))},
        PRIMARY KEY (project_id, span, dim, bucket_start, value)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE threads (
        project_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        calls INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        PRIMARY KEY (project_id, thread_id)
    ) WITHOUT ROWID
    """,
    *_backfill(_SQLITE_SPANS),
    _THREAD_BACKFILL,
    *_INDEXES,
)

# date_trunc('week') starts weeks on Monday (ISO).
_PG_SPANS = {
    span: f"date_trunc('{span}', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'" for span in ("week", "day", "hour")
}

POSTGRES_ROLLUP_STATEMENTS: tuple[str, ...] = (
    f"""
    CREATE TABLE call_rollups (
        project_id TEXT COLLATE "C" NOT NULL,
        span TEXT COLLATE "C" NOT NULL,
        dim TEXT COLLATE "C" NOT NULL,
        bucket_start TIMESTAMPTZ NOT NULL,
        value TEXT COLLATE "C" NOT NULL,
        {", ".join(f"{c} BIGINT NOT NULL" for c in _SUMS.split(", "))},
        PRIMARY KEY (project_id, span, dim, bucket_start, value)
    )
    """,
    """
    CREATE TABLE threads (
        project_id TEXT COLLATE "C" NOT NULL,
        thread_id TEXT COLLATE "C" NOT NULL,
        first_seen TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL,
        calls BIGINT NOT NULL,
        cost_nanos BIGINT NOT NULL,
        PRIMARY KEY (project_id, thread_id)
    )
    """,
    *_backfill(_PG_SPANS),
    _THREAD_BACKFILL,
    *_INDEXES,
)


# The next step: roll-ups of four weeks (from a Monday), the coarsest a long window is read from; and roll-ups
# of the calls paid with the caller's own provider key, apart, so that a budget that leaves them out (limits'
# ``byok_calls: ignore``) is read from the roll-ups too: what it has used is the scope's roll-up less its
# ``own_`` roll-up. Only such calls add these rows (``_rollup_rows.py``).
OWN_KEY_DIMS = {"all": "own_all", "key": "own_key", "user": "own_user", "model": "own_model"}
_FOUR_WEEKS_US = 4 * 604800000000
_SQLITE_FOUR_WEEKS = {"4week": f"((started_at - 345600000000) / {_FOUR_WEEKS_US}) * {_FOUR_WEEKS_US} + 345600000000"}
_PG_FOUR_WEEKS = {
    "4week": "TIMESTAMPTZ '1970-01-05 00:00:00+00' + INTERVAL '28 days' * "
    "floor((extract(epoch FROM started_at) - 345600) / 2419200)"
}


def _own_key_backfill(spans: dict[str, str]) -> tuple[str, ...]:
    return tuple(
        f"INSERT INTO call_rollups ({ROLLUP_COLUMNS}) SELECT project_id, '{span}', '{OWN_KEY_DIMS[dim]}', {bucket}, "
        f"{value}, {_GROUP_SUMS} FROM calls WHERE caller_key IS NOT NULL GROUP BY 1, 4, 5"
        for span, bucket in spans.items()
        for dim, value in _dims("calls")
        if dim in OWN_KEY_DIMS
    )


SQLITE_OWN_KEY_STATEMENTS = (
    *_backfill(_SQLITE_FOUR_WEEKS),
    *_own_key_backfill({**_SQLITE_SPANS, **_SQLITE_FOUR_WEEKS}),
)
POSTGRES_OWN_KEY_STATEMENTS = (*_backfill(_PG_FOUR_WEEKS), *_own_key_backfill({**_PG_SPANS, **_PG_FOUR_WEEKS}))
