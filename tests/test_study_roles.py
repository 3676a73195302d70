"""The PostgreSQL roles docs/study.md gives are enough, and no more, for each job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from acudevice.store import Journal
from acudevice.study.schema import connect
from tests.mqtt_broker import Broker
from tests.postgres_server import PostgresServer
from tests.study_helpers import centre, count, drained, ingesting, sending, synthetic_session

pytestmark = pytest.mark.mqtt
DOC = Path(__file__).resolve().parents[1] / "docs" / "study.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    return f"postgresql://{role}@{parts.hostname}:{parts.port}{parts.path}"


def study(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", "study", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def run_sql(server: PostgresServer, database: str, sql: str) -> None:
    """Run a block of the docs; roles belong to the whole server, which other tests share,
    so a role already there is kept."""
    sql = re.sub(
        r"^CREATE ROLE (\w+) ([^;]*);",
        r"DO $$BEGIN CREATE ROLE \1 \2; EXCEPTION WHEN duplicate_object THEN NULL; END$$;",
        sql,
        flags=re.M,
    )
    done = subprocess.run(
        [*server.psql(database), "-v", "ON_ERROR_STOP=1"],
        input=sql, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def test_each_role_of_the_docs_does_its_job_and_only_that(
    tmp_path: Path, broker: Broker, pg_url: str, postgres_server: PostgresServer
) -> None:
    database = urlsplit(pg_url).path.lstrip("/")
    owner_sql, grants_sql = sql_blocks()
    owner_sql = owner_sql.split("\\c study\n", 1)[1]  # the database exists already
    run_sql(postgres_server, database, owner_sql.replace("DATABASE study", f"DATABASE {database}"))
    await centre(as_role(pg_url, "study_owner"), ["gw1"])
    run_sql(postgres_server, database, grants_sql.replace("DATABASE study", f"DATABASE {database}"))

    ingest_url = as_role(pg_url, "study_ingest")
    with Journal(tmp_path / "gw1.db") as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=20)
        async with ingesting(broker, ingest_url), sending(journal, broker, "gw1") as sender:
            await drained(sender)
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=20)
        async with ingesting(broker, ingest_url), sending(journal, broker, "gw1") as sender:
            await drained(sender)  # a second start: the schema is current, nothing to create
    assert await count(pg_url, "samples") == 2 * 20 * 8

    analyst = as_role(pg_url, "study_analyst")
    for args in (
        ["export", "-o", str(tmp_path / "csv")],
        ["report", "-o", str(tmp_path / "r.png")],
    ):
        done = study(args[0], "--database", analyst, *args[1:])
        assert done.returncode == 0, done.stderr
    conn = await connect(analyst)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM samples")
    finally:
        await conn.close()
    withdraw = study("withdraw", "P1", "--database", analyst, "--broker", broker.url)
    assert withdraw.returncode == 2 and "permission denied" in withdraw.stderr
    assert "Traceback" not in withdraw.stderr
    assert await count(pg_url, "samples") == 2 * 20 * 8
