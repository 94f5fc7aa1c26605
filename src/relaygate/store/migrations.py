"""The schema, as ordered, versioned migration steps per backend, and the rule for which ones to apply.

A ``schema_version`` table holds one row per applied migration. At ``start()`` each backend opens a
transaction (taking a lock so two gateways starting together do not both migrate), reads the newest
version, applies the missing steps in order and records them; a database already up to date is left as
it is. A database newer than the last step known here is refused with :class:`SchemaVersionError`: old
code writing into a schema it does not understand could corrupt it.

To change the schema, append a :class:`Migration` with the next version to *both* lists; never edit a
step that has shipped. The two schemas hold the same columns; they differ only where the types do:
PostgreSQL has ``uuid``, ``timestamptz``, ``jsonb`` and ``COLLATE "C"`` text (byte order, like SQLite's,
so both sort alike); SQLite keeps ids as text and times as integer microseconds since the epoch (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from relaygate.store._rollup_sql import (
    POSTGRES_OWN_KEY_STATEMENTS,
    POSTGRES_ROLLUP_STATEMENTS,
    SQLITE_OWN_KEY_STATEMENTS,
    SQLITE_ROLLUP_STATEMENTS,
)
from relaygate.store.base import SchemaVersionError

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "Migration", "pending_migrations"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


# The dashboard's step (its SQL in _rollup_sql.py): roll-ups of the calls, a row per thread, list indexes.
DASHBOARD_MIGRATION = "call roll-ups by hour and day, threads, indexes of the calls list"
OWN_KEY_MIGRATION = "roll-ups of four weeks; roll-ups of the calls paid with the caller's own provider key, apart"

SQLITE_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at INTEGER NOT NULL
)
"""

POSTGRES_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""

SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "calls, messages, model registry, custom prices",
        (
            """
            CREATE TABLE calls (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                trace_id TEXT NOT NULL,
                thread_id TEXT,
                run_id TEXT,
                label TEXT,
                tags TEXT NOT NULL DEFAULT '{}',
                key_id TEXT,
                user_id TEXT,
                user_name TEXT,
                user_tags TEXT NOT NULL DEFAULT '[]',
                requested_model TEXT NOT NULL,
                model TEXT NOT NULL,
                provider TEXT NOT NULL,
                provider_kind TEXT NOT NULL,
                endpoint TEXT NOT NULL,
                stream INTEGER NOT NULL,
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                total_tokens INTEGER NOT NULL,
                cached_tokens INTEGER NOT NULL,
                cache_write_tokens INTEGER NOT NULL,
                reasoning_tokens INTEGER NOT NULL,
                cost_nanos INTEGER,
                status INTEGER NOT NULL,
                error TEXT,
                latency_us INTEGER NOT NULL,
                ttft_us INTEGER,
                started_at INTEGER NOT NULL,
                ended_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX calls_project_started ON calls (project_id, started_at)",
            "CREATE INDEX calls_project_thread ON calls (project_id, thread_id)",
            "CREATE INDEX calls_key_started ON calls (key_id, started_at)",
            """
            CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                thread_id TEXT NOT NULL,
                call_id TEXT,
                position INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                role TEXT NOT NULL,
                content TEXT,
                tool_calls TEXT,
                tool_call_id TEXT,
                model TEXT,
                cost_nanos INTEGER
            )
            """,
            "CREATE INDEX messages_project_thread ON messages (project_id, thread_id, created_at, position)",
            """
            CREATE TABLE models (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                name TEXT NOT NULL,
                provider TEXT NOT NULL,
                model_name_in_provider TEXT,
                model_type TEXT NOT NULL,
                description TEXT NOT NULL,
                owner_name TEXT NOT NULL,
                priority INTEGER NOT NULL,
                context_size INTEGER,
                public INTEGER NOT NULL,
                capabilities TEXT NOT NULL,
                input_types TEXT NOT NULL,
                output_types TEXT NOT NULL,
                tags TEXT NOT NULL,
                parameters TEXT NOT NULL,
                input_price REAL,
                output_price REAL,
                cached_input_price REAL,
                cache_write_price REAL,
                per_image_price TEXT,
                UNIQUE (project_id, name)
            )
            """,
            """
            CREATE TABLE custom_prices (
                project_id TEXT NOT NULL,
                model TEXT NOT NULL,
                input_price REAL,
                output_price REAL,
                cached_input_price REAL,
                cache_write_price REAL,
                per_image_price TEXT,
                PRIMARY KEY (project_id, model)
            )
            """,
        ),
    ),
    Migration(
        2,
        "guard results and routing attempts of each call",
        (
            "ALTER TABLE calls ADD COLUMN guards TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE calls ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]'",
        ),
    ),
    Migration(
        3,
        "calls a provider billed beyond their reservation",
        ("ALTER TABLE calls ADD COLUMN overbilled INTEGER NOT NULL DEFAULT 0",),
    ),
    Migration(
        4,
        "stored responses of the Responses API",
        (
            """
            CREATE TABLE responses (
                id TEXT PRIMARY KEY,
                project_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                model TEXT NOT NULL,
                previous_response_id TEXT,
                input_items TEXT NOT NULL,
                response TEXT NOT NULL
            )
            """,
            "CREATE INDEX responses_project_created ON responses (project_id, created_at)",
        ),
    ),
    Migration(
        5,
        "calls paid with the caller's own provider key; image prices per megapixel",
        (
            "ALTER TABLE calls ADD COLUMN caller_key TEXT",
            "ALTER TABLE models ADD COLUMN mp_price REAL",
            "ALTER TABLE custom_prices ADD COLUMN mp_price REAL",
        ),
    ),
    Migration(6, DASHBOARD_MIGRATION, SQLITE_ROLLUP_STATEMENTS),
    Migration(
        7, "the name of a thread's messages (a tool message's function)", ("ALTER TABLE messages ADD COLUMN name TEXT",)
    ),
    Migration(8, OWN_KEY_MIGRATION, SQLITE_OWN_KEY_STATEMENTS),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "calls, messages, model registry, custom prices",
        (
            """
            CREATE TABLE calls (
                id UUID PRIMARY KEY,
                project_id TEXT COLLATE "C" NOT NULL,
                trace_id TEXT COLLATE "C" NOT NULL,
                thread_id TEXT COLLATE "C",
                run_id TEXT COLLATE "C",
                label TEXT COLLATE "C",
                tags JSONB NOT NULL DEFAULT '{}',
                key_id TEXT COLLATE "C",
                user_id TEXT COLLATE "C",
                user_name TEXT COLLATE "C",
                user_tags JSONB NOT NULL DEFAULT '[]',
                requested_model TEXT COLLATE "C" NOT NULL,
                model TEXT COLLATE "C" NOT NULL,
                provider TEXT COLLATE "C" NOT NULL,
                provider_kind TEXT COLLATE "C" NOT NULL,
                endpoint TEXT COLLATE "C" NOT NULL,
                stream BOOLEAN NOT NULL,
                prompt_tokens BIGINT NOT NULL,
                completion_tokens BIGINT NOT NULL,
                total_tokens BIGINT NOT NULL,
                cached_tokens BIGINT NOT NULL,
                cache_write_tokens BIGINT NOT NULL,
                reasoning_tokens BIGINT NOT NULL,
                cost_nanos BIGINT,
                status INTEGER NOT NULL,
                error TEXT COLLATE "C",
                latency_us BIGINT NOT NULL,
                ttft_us BIGINT,
                started_at TIMESTAMPTZ NOT NULL,
                ended_at TIMESTAMPTZ NOT NULL
            )
            """,
            "CREATE INDEX calls_project_started ON calls (project_id, started_at)",
            "CREATE INDEX calls_project_thread ON calls (project_id, thread_id)",
            "CREATE INDEX calls_key_started ON calls (key_id, started_at)",
            """
            CREATE TABLE messages (
                id UUID PRIMARY KEY,
                project_id TEXT COLLATE "C" NOT NULL,
                thread_id TEXT COLLATE "C" NOT NULL,
                call_id UUID,
                position INTEGER NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                role TEXT COLLATE "C" NOT NULL,
                -- json, not jsonb: a message is kept byte for byte as sent (key order, \\u0000 and all).
                content JSON,
                tool_calls JSON,
                tool_call_id TEXT COLLATE "C",
                model TEXT COLLATE "C",
                cost_nanos BIGINT
            )
            """,
            "CREATE INDEX messages_project_thread ON messages (project_id, thread_id, created_at, position)",
            """
            CREATE TABLE models (
                id UUID PRIMARY KEY,
                -- '' for a global model: a NULL would never collide in the unique constraint.
                project_id TEXT COLLATE "C" NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                provider TEXT COLLATE "C" NOT NULL,
                model_name_in_provider TEXT COLLATE "C",
                model_type TEXT COLLATE "C" NOT NULL,
                description TEXT COLLATE "C" NOT NULL,
                owner_name TEXT COLLATE "C" NOT NULL,
                priority INTEGER NOT NULL,
                context_size BIGINT,
                public BOOLEAN NOT NULL,
                capabilities JSON NOT NULL,
                input_types JSON NOT NULL,
                output_types JSON NOT NULL,
                tags JSON NOT NULL,
                parameters JSON NOT NULL,
                input_price DOUBLE PRECISION,
                output_price DOUBLE PRECISION,
                cached_input_price DOUBLE PRECISION,
                cache_write_price DOUBLE PRECISION,
                per_image_price JSON,
                UNIQUE (project_id, name)
            )
            """,
            """
            CREATE TABLE custom_prices (
                project_id TEXT COLLATE "C" NOT NULL,
                model TEXT COLLATE "C" NOT NULL,
                input_price DOUBLE PRECISION,
                output_price DOUBLE PRECISION,
                cached_input_price DOUBLE PRECISION,
                cache_write_price DOUBLE PRECISION,
                per_image_price JSON,
                PRIMARY KEY (project_id, model)
            )
            """,
        ),
    ),
    Migration(
        2,
        "guard results and routing attempts of each call",
        (
            "ALTER TABLE calls ADD COLUMN guards JSON NOT NULL DEFAULT '[]'",
            "ALTER TABLE calls ADD COLUMN attempts JSON NOT NULL DEFAULT '[]'",
        ),
    ),
    Migration(
        3,
        "calls a provider billed beyond their reservation",
        ("ALTER TABLE calls ADD COLUMN overbilled BOOLEAN NOT NULL DEFAULT false",),
    ),
    Migration(
        4,
        "stored responses of the Responses API",
        (
            """
            CREATE TABLE responses (
                id TEXT COLLATE "C" PRIMARY KEY,
                project_id TEXT COLLATE "C" NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                model TEXT COLLATE "C" NOT NULL,
                previous_response_id TEXT COLLATE "C",
                -- json, not jsonb: kept as the client sent and got it (key order, \\u0000 and all).
                input_items JSON NOT NULL,
                response JSON NOT NULL
            )
            """,
            "CREATE INDEX responses_project_created ON responses (project_id, created_at)",
        ),
    ),
    Migration(
        5,
        "calls paid with the caller's own provider key; image prices per megapixel",
        (
            'ALTER TABLE calls ADD COLUMN caller_key TEXT COLLATE "C"',
            "ALTER TABLE models ADD COLUMN mp_price DOUBLE PRECISION",
            "ALTER TABLE custom_prices ADD COLUMN mp_price DOUBLE PRECISION",
        ),
    ),
    Migration(6, DASHBOARD_MIGRATION, POSTGRES_ROLLUP_STATEMENTS),
    Migration(
        7,
        "the name of a thread's messages (a tool message's function)",
        ('ALTER TABLE messages ADD COLUMN name TEXT COLLATE "C"',),
    ),
    Migration(8, OWN_KEY_MIGRATION, POSTGRES_OWN_KEY_STATEMENTS),
)


def latest_version(migrations: Sequence[Migration]) -> int:
    return migrations[-1].version if migrations else 0


def pending_migrations(current: int, migrations: Sequence[Migration]) -> list[Migration]:
    """The steps to apply to a database at version ``current`` (0: empty), in order.

    Raises :class:`SchemaVersionError` when the database is newer than the newest step here.
    """
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        # A programming error in this module, caught by the tests before it reaches a database.
        raise AssertionError(f"migration versions must be 1..n in order, got {versions}")
    latest = latest_version(migrations)
    if current > latest:
        raise SchemaVersionError(
            f"the database schema is at version {current}, but this relaygate only knows versions up to "
            f"{latest}: it was upgraded by a newer relaygate; run that version (or a newer one)"
        )
    return [m for m in migrations if m.version > current]
