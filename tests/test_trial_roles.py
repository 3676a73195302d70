"""The trial's PostgreSQL roles, as docs/trials.md gives them: the arm is sealed from analysts,
the ingester and the enrolling staff, and reaches an unblinder only through the logged door."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.paths import shipped_profiles_dir
from acudevice.study.schema import connect
from tests.postgres_server import PostgresServer
from tests.study_helpers import centre, query
from tests.test_study_roles import as_role, run_sql, sql_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "trials.md"
EXAMPLE = shipped_profiles_dir() / "studies" / "nausea-trial.toml"
runner = CliRunner()


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def denied(url: str, sql: str) -> None:
    conn = await connect(url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(sql)
    finally:
        await conn.close()


async def test_each_trial_role_does_its_job_and_never_reads_an_arm_unlogged(
    tmp_path: Path, pg_url: str, postgres_server: PostgresServer
) -> None:
    database = urlsplit(pg_url).path.lstrip("/")
    owner_sql, grants_sql = sql_blocks()
    owner_sql = owner_sql.split("\\c study\n", 1)[1].replace(
        "DATABASE study", f"DATABASE {database}"
    )
    run_sql(postgres_server, database, owner_sql)
    await centre(as_role(pg_url, "study_owner"), ["gw1"])  # schema version 2, owned by the owner
    run_sql(postgres_server, database, grants_sql.replace("DATABASE study", f"DATABASE {database}"))
    [trial_sql] = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    run_sql(postgres_server, database, trial_sql)
    enroller, unblinder = as_role(pg_url, "study_enroller"), as_role(pg_url, "study_unblinder")
    analyst, ingest = as_role(pg_url, "study_analyst"), as_role(pg_url, "study_ingest")

    for who in ("P1", "P2", "P1"):  # P1 twice: the second recomputes the arm, reads none
        done = await cli("study", "enroll", who, "--study", str(EXAMPLE), "--database", enroller,
                         "--attribute", "site=london", "--no-deliver")  # fmt: skip
        assert done.exit_code == 0, done.output
    assert await query(pg_url, "SELECT count(*) FROM acudevice_sealed.allocations") == [(2,)]
    arm_read = "SELECT arm FROM acudevice_sealed.allocations"
    for url in (enroller, analyst, ingest, unblinder):
        await denied(url, arm_read)
    for url in (enroller, analyst, ingest):
        await denied(url, "SELECT * FROM acudevice_sealed.unblind('x', NULL, 'why', 'me')")
        refused = await cli("study", "unblind", "P1", "--reason", "curious", "--database", url)
        assert refused.exit_code == 2 and "permission denied" in refused.stderr, refused.output
    await denied(analyst, "SELECT * FROM acudevice_sealed.unblindings")
    await denied(unblinder, "DELETE FROM acudevice_sealed.unblindings")
    await denied(unblinder, "UPDATE acudevice_sealed.unblindings SET reason = 'none'")

    report = await cli("study", "report", "--database", analyst, "-o", str(tmp_path / "a.png"))
    assert report.exit_code == 0, report.output
    peek = await cli("study", "report", "--database", analyst, "-o", str(tmp_path / "b.png"),
                     "--unblind-reason", "curious")  # fmt: skip
    assert peek.exit_code == 2 and "permission denied" in peek.stderr, peek.output

    shown = await cli("study", "unblind", "P2", "--reason", "SAE 7", "--database", unblinder)
    assert shown.exit_code == 0 and shown.stdout.startswith("P2: arm "), shown.output
    listed = await cli("study", "unblindings", "--database", unblinder)
    assert listed.exit_code == 0 and "(role study_unblinder)" in listed.stdout, listed.output
    log = await query(
        pg_url, "SELECT db_user, participants, reason FROM acudevice_sealed.unblindings"
    )
    assert [tuple(r) for r in log] == [("study_unblinder", ["P2"], "SAE 7")], "refusals log nothing"
