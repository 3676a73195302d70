"""The centre's PostgreSQL schema, migrated in ordered steps like the journal's.

Each step runs in one transaction under an advisory lock, so several ingesters starting at
once migrate exactly once. A database migrated by a newer acudevice is refused. asyncpg is
imported here, on first use, never when `acudevice --help` runs.

Keys are the records' keys (store/records.py): a session by `session_uuid`, a sample by
(`session_uuid`, channel, `t_ms`), an event by (`session_uuid`, `n`); re-delivered records
insert nothing. Samples carry no participant: a participant's samples are found through
their sessions.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from acudevice.errors import AcuDeviceError, InputError, Problem


class CentreError(AcuDeviceError):
    """The study database cannot be reached, or is not ours."""


MIGRATION_LOCK = 0x616375_01
"""Advisory lock key for migrations (and, shared, for ingest vs withdrawal: see WRITE_LOCK)."""
WRITE_LOCK = 0x616375_02
"""Ingesters hold it shared while they write; a withdrawal holds it exclusively, so no
record of a withdrawn participant commits after the withdrawal does."""

_V1 = """
CREATE TABLE gateways (
    name text PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz
);
CREATE TABLE withdrawn (
    participant text PRIMARY KEY,
    withdrawn_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE sessions (
    session_uuid uuid PRIMARY KEY,
    rev integer NOT NULL,
    gateway text NOT NULL,
    band text,
    participant text,
    program text NOT NULL,
    device_model text NOT NULL,
    actuator text NOT NULL,
    cap_level integer NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    outcome text NOT NULL,
    detail text,
    peak_level integer,
    repeats_done integer NOT NULL,
    repeats_planned integer NOT NULL,
    start_skew_ms double precision,
    rating_before smallint,
    rating_after smallint,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_by_participant ON sessions (participant, started_at);
CREATE INDEX sessions_by_gateway ON sessions (gateway, started_at);
CREATE TABLE samples (
    session_uuid uuid NOT NULL,
    channel smallint NOT NULL,
    t_ms integer NOT NULL,
    measured_level integer NOT NULL,
    target_level integer NOT NULL,
    state smallint NOT NULL,
    PRIMARY KEY (session_uuid, channel, t_ms)
);
CREATE TABLE faults (
    session_uuid uuid NOT NULL,
    n integer NOT NULL,
    channel smallint NOT NULL,
    t_ms integer,
    code text NOT NULL,
    message text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (session_uuid, n)
);
CREATE TABLE comfort_events (
    session_uuid uuid NOT NULL,
    n integer NOT NULL,
    point text NOT NULL,
    t_ms integer,
    old_level integer,
    new_level integer NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (session_uuid, n)
);
CREATE TABLE intensity_changes (
    session_uuid uuid NOT NULL,
    n integer NOT NULL,
    t_ms integer,
    percent smallint NOT NULL,
    level integer NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (session_uuid, n)
)
"""

SEALED = "acudevice_sealed"
"""The schema only enrolment and unblinding reach (docs/trials.md, "Who may see what")."""

_V2 = f"""
CREATE TABLE studies (
    name text PRIMARY KEY,
    digest text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE enrolments (
    participant text PRIMARY KEY,
    study text NOT NULL REFERENCES studies (name),
    stratum text NOT NULL,
    attributes jsonb NOT NULL,
    timetable jsonb NOT NULL,
    enrolled_at timestamptz NOT NULL DEFAULT now(),
    enrolled_by text NOT NULL
);
CREATE SCHEMA {SEALED};
REVOKE ALL ON SCHEMA {SEALED} FROM PUBLIC;
CREATE TABLE {SEALED}.allocations (
    participant text PRIMARY KEY,
    study text NOT NULL,
    stratum text NOT NULL,
    position integer NOT NULL CHECK (position >= 1),
    arm text NOT NULL,
    program text NOT NULL,
    label text NOT NULL,
    allocated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (study, stratum, position)
);
CREATE TABLE {SEALED}.unblindings (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    os_user text NOT NULL CHECK (length(btrim(os_user)) > 0),
    db_user text NOT NULL,
    scope text NOT NULL,
    participants text[],
    reason text NOT NULL CHECK (length(btrim(reason)) > 0)
);
CREATE FUNCTION {SEALED}.unblind(scope text, who text[], why text, actor text)
RETURNS TABLE (participant text, study text, stratum text, arm text, program text,
               label text, allocated_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    IF why IS NULL OR length(btrim(why)) = 0 THEN
        RAISE EXCEPTION 'unblinding needs a reason' USING ERRCODE = '22023';
    END IF;
    INSERT INTO {SEALED}.unblindings (os_user, db_user, scope, participants, reason)
        VALUES (actor, session_user, scope, who, why);
    RETURN QUERY
        SELECT a.participant, a.study, a.stratum, a.arm, a.program, a.label, a.allocated_at
        FROM {SEALED}.allocations a
        WHERE who IS NULL OR a.participant = ANY (who)
        ORDER BY a.participant;
END
$$;
REVOKE ALL ON FUNCTION {SEALED}.unblind(text, text[], text, text) FROM PUBLIC
"""

MIGRATIONS: tuple[str, ...] = (
    _V1,  # 0 -> 1: gateways, withdrawals, sessions, samples, events
    _V2,  # 1 -> 2: studies, enrolments; sealed allocations, the unblinding log
)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("sessions", "samples", "faults", "comfort_events", "intensity_changes")


def check_url(url: str, source: str = "--database") -> str:
    """A postgresql:// URL (credentials may come from ~/.pgpass or PG* variables)."""
    if urlsplit(url).scheme not in ("postgresql", "postgres"):
        raise InputError([Problem(source, "", f"{url!r} is not a postgresql://... URL")])
    return url


async def connect(url: str) -> Any:
    """An asyncpg connection, or CentreError in one line (never the password)."""
    import asyncpg  # here: only the centre's commands need the driver

    try:
        return await asyncpg.connect(check_url(url), timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        where = urlsplit(url)
        raise CentreError(
            f"cannot connect to PostgreSQL at {where.hostname}:{where.port or 5432}"
            f"{where.path}: {exc}"
        ) from None


async def migrate(conn: Any) -> int:
    """Bring the schema up to date; returns the version it had. A role that may only read
    or insert (docs/study.md) passes when the schema is current, and is told in one line
    (CentreError) when it is not."""
    import asyncpg

    try:
        return await _migrate(conn)
    except asyncpg.PostgresError as exc:
        raise CentreError(f"cannot bring the study schema up to date: {exc}") from None


async def _migrate(conn: Any) -> int:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        if await conn.fetchval("SELECT to_regclass('acudevice_schema')") is None:
            await conn.execute("CREATE TABLE acudevice_schema (version integer NOT NULL)")
        found = await conn.fetchval("SELECT max(version) FROM acudevice_schema")
    old = int(found or 0)
    if old > SCHEMA_VERSION:
        raise CentreError(
            f"study database schema {old} is newer than this acudevice "
            f"(knows up to {SCHEMA_VERSION}); upgrade acudevice"
        )
    for target in range(old + 1, SCHEMA_VERSION + 1):
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            done = await conn.fetchval("SELECT coalesce(max(version), 0) FROM acudevice_schema")
            if done >= target:
                continue  # another ingester got here first
            await conn.execute(MIGRATIONS[target - 1])
            await conn.execute("INSERT INTO acudevice_schema VALUES ($1)", target)
    return old
