"""Enrolment, sealed allocation, delivery and unblinding on a real PostgreSQL and Mosquitto."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from acudevice.bridge.acl import acl_text
from acudevice.bridge.participant_protocol import decode
from acudevice.cli.main import app
from acudevice.paths import shipped_profiles_dir
from acudevice.plan.protocol import parse_protocol
from acudevice.study.allocations import enrol
from acudevice.study.schema import connect, migrate
from tests.mqtt_broker import Broker
from tests.study_helpers import centre, query

pytestmark = pytest.mark.mqtt
EXAMPLE = shipped_profiles_dir() / "studies" / "nausea-trial.toml"
USERS = {"gw-a": "pw-a", "gw-b": "pw-b", "ingester": "pw-i", "homeassistant": "h", "operator": "o"}
SECRETS = ("active", "sham", "nausea-relief", "nausea-sham", "Nausea relief")
runner = CliRunner()


async def cli(*args: str) -> Result:
    """The command in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


def one_line_refusal(result: Result, expected: str) -> None:
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.output


async def test_a_gateway_receives_the_label_and_schedule_and_never_the_arm(
    tmp_path: Path, pg_url: str
) -> None:
    acl = acl_text(["gw-a", "gw-b"], participants={"gw-a": ["P1", "P2"], "gw-b": ["P3", "P4"]})
    broker = Broker(tmp_path / "broker", users=USERS, acl=acl)
    broker.start()
    (tmp_path / "pw").write_text("pw-i\n")
    centre_login = ["--broker", broker.url, "--username", "ingester",
                    "--password-file", str(tmp_path / "pw")]  # fmt: skip
    try:
        await centre(pg_url, ["gw-a", "gw-b"])
        for who, site in (("P1", "leeds"), ("P2", "leeds"), ("P3", "leeds"), ("P4", "london")):
            done = await cli("study", "enroll", who, "--study", str(EXAMPLE), "--database",
                             pg_url, "--attribute", f"site={site}", *centre_login)  # fmt: skip
            assert done.exit_code == 0, done.output
            assert "enrolled in nausea-trial (stratum site=" in done.stdout
            assert not any(secret in done.output for secret in SECRETS), done.output
        mine = await broker.retained("acudevice/study/participants/+/protocol", user="gw-a")
        assert sorted(mine) == [f"acudevice/study/participants/{p}/protocol" for p in ("P1", "P2")]
        arms = {r["participant"]: r for r in await query(
            pg_url, "SELECT participant, arm, stratum, position FROM acudevice_sealed.allocations"
        )}  # fmt: skip
        assert {arms[p]["arm"] for p in ("P1", "P2", "P3")} == {"active", "sham"}
        for topic, text in mine.items():
            for secret in SECRETS:
                assert secret not in text, (topic, secret)
            got = decode(text.encode(), topic)
            assert got is not None and got.label == "Study programme"
            assert got.program.name == "study-programme" and got.reminders is not None
            [row] = await query(
                pg_url, "SELECT timetable FROM enrolments WHERE participant = $1", got.participant
            )
            assert (
                got.schedule.model_dump_json()
                == type(got.schedule).model_validate_json(row["timetable"]).model_dump_json()
            )
            assert got.schedule.timezone == "Europe/London" and len(got.schedule.windows) == 3
            target = max(p.target_kpa or 0 for p in got.program.phases)
            assert target == (12.0 if arms[got.participant]["arm"] == "active" else 3.0)
        # nobody but gateways and the centre reads a protocol
        assert await broker.retained("acudevice/#", user="homeassistant") == {}
        assert await broker.retained("acudevice/study/#", user="operator") == {}

        again = await cli("study", "enroll", "P1", "--study", str(EXAMPLE), "--database", pg_url,
                          "--attribute", "site=leeds", *centre_login)  # fmt: skip
        assert again.exit_code == 0 and "P1 already enrolled" in again.stdout
        assert await query(pg_url, "SELECT count(*) FROM acudevice_sealed.allocations") == [(4,)]
        other_site = await cli("study", "enroll", "P1", "--study", str(EXAMPLE), "--database",
                               pg_url, "--attribute", "site=london", *centre_login)  # fmt: skip
        one_line_refusal(other_site, "P1 is enrolled with --attribute site=leeds")
        changed = tmp_path / "changed.toml"
        changed.write_text(EXAMPLE.read_text().replace("seed = 20270115", "seed = 1"))
        amended = await cli("study", "enroll", "P9", "--study", str(changed), "--database", pg_url,
                            "--attribute", "site=leeds", *centre_login)  # fmt: skip
        one_line_refusal(amended, "began with a different protocol")
        missing = await cli("study", "enroll", "P9", "--study", str(EXAMPLE), "--database",
                            pg_url, *centre_login)  # fmt: skip
        one_line_refusal(missing, "--attribute:site: missing: give site=VALUE")

        gone = await cli("study", "withdraw", "P2", "--database", pg_url, *centre_login)
        assert gone.exit_code == 0, gone.output
        left = await broker.retained("acudevice/study/participants/+/protocol", user="gw-a")
        assert sorted(left) == ["acudevice/study/participants/P1/protocol"], "P2's cleared"
        back = await cli("study", "enroll", "P2", "--study", str(EXAMPLE), "--database", pg_url,
                         "--attribute", "site=leeds", *centre_login)  # fmt: skip
        one_line_refusal(back, "P2 has withdrawn")
    finally:
        broker.stop()


async def test_allocation_in_the_store_follows_the_seeded_blocks_in_each_stratum(
    postgres_server: Any,
) -> None:
    study = parse_protocol(EXAMPLE)
    when = dt.datetime(2027, 1, 15, 10, 0, tzinfo=dt.UTC)
    stored = []
    for _ in range(2):  # two databases, the same enrolments: the same arms
        url = postgres_server.new_database()
        conn = await connect(url)
        try:
            await migrate(conn)
            for i in range(14):
                site = "leeds" if i % 7 < 4 else "london"
                await enrol(conn, study, f"P{i:02d}", {"site": site}, now=when)
            stored.append(
                [tuple(r) for r in await conn.fetch(
                    "SELECT participant, stratum, position, arm FROM acudevice_sealed.allocations"
                    " ORDER BY participant"
                )]
            )  # fmt: skip
        finally:
            await conn.close()
    assert stored[0] == stored[1]
    for stratum in ("site=leeds", "site=london"):
        mine = sorted((pos, arm) for _, s, pos, arm in stored[0] if s == stratum)
        assert [pos for pos, _ in mine] == list(range(1, len(mine) + 1))
        assert [arm for _, arm in mine] == study.design.sequence(stratum, len(mine))
        counts = Counter(arm for _, arm in mine)
        assert abs(counts["active"] - counts["sham"]) <= max(study.protocol.allocation.block_sizes)


async def test_unblinding_needs_a_reason_and_every_reveal_is_logged(
    tmp_path: Path, pg_url: str
) -> None:
    await centre(pg_url, ["gw-a"])
    for who in ("P1", "P2"):
        done = await cli("study", "enroll", who, "--study", str(EXAMPLE), "--database", pg_url,
                         "--attribute", "site=leeds", "--no-deliver")  # fmt: skip
        assert done.exit_code == 0, done.output
    one_line_refusal(
        await cli("study", "unblind", "P1", "--database", pg_url),
        "--reason: unblinding is logged with who, when and why: give the reason",
    )
    one_line_refusal(
        await cli("study", "unblind", "P1", "--database", pg_url, "--reason", "   "), "--reason"
    )
    conn = await connect(pg_url)
    try:  # the database's own door refuses an empty reason too, whoever calls it
        with pytest.raises(asyncpg.InvalidParameterValueError, match="needs a reason"):
            await conn.fetch(
                "SELECT * FROM acudevice_sealed.unblind('participant', NULL, ' ', 'me')"
            )
    finally:
        await conn.close()
    assert await query(pg_url, "SELECT count(*) FROM acudevice_sealed.unblindings") == [(0,)]
    [(arm,)] = await query(
        pg_url, "SELECT arm FROM acudevice_sealed.allocations WHERE participant = 'P1'"
    )
    shown = await cli("study", "unblind", "P1", "--database", pg_url,
                      "--reason", "serious adverse event, DSMB request 4")  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"P1: arm {arm} (program nausea-")
    assert "unblinding logged: by " in shown.stderr
    [log] = await query(pg_url, "SELECT * FROM acudevice_sealed.unblindings")
    assert log["participants"] == ["P1"] and log["scope"] == "participant"
    assert log["reason"] == "serious adverse event, DSMB request 4"
    assert log["db_user"] == "postgres" and "@" in log["os_user"]
    assert abs((dt.datetime.now(dt.UTC) - log["at"]).total_seconds()) < 60
    listed = await cli("study", "unblindings", "--database", pg_url)
    assert "participant: P1" in listed.stdout and "DSMB request 4" in listed.stdout
    assert not any(secret in listed.stdout for secret in ("active", "sham")), listed.stdout
    one_line_refusal(
        await cli("study", "unblind", "P7", "--database", pg_url, "--reason", "check"),
        "P7 is not enrolled",
    )

    blind = await cli("study", "report", "--database", pg_url, "-o", str(tmp_path / "r.png"),
                      "--json")  # fmt: skip
    assert blind.exit_code == 0, blind.output
    figures = json.loads(blind.stdout)
    assert figures["arms"] == {} and figures["arm_totals"] == {} and not figures["unblinded"]
    assert not any(secret in blind.stdout for secret in SECRETS)
    assert {a["participant"] for a in figures["adherence_totals"]} == {"P1", "P2"}
    seen = await cli("study", "report", "--database", pg_url, "-o", str(tmp_path / "u.png"),
                     "--json", "--unblind-reason", "final analysis")  # fmt: skip
    assert seen.exit_code == 0, seen.output
    figures = json.loads(seen.stdout)
    assert figures["unblinded"] and figures["arms"]["P1"] == arm
    assert sum(t["windows"] for t in figures["arm_totals"].values()) == 2 * 21

    plain = await cli("study", "export", "--database", pg_url, "-o", str(tmp_path / "plain"))
    assert plain.exit_code == 0, plain.output
    assert sorted(p.name for p in (tmp_path / "plain").iterdir() if p.name.startswith(("a", "s"))) == [
        "samples.csv", "schedule.csv", "sessions.csv",
    ]  # fmt: skip
    with (tmp_path / "plain" / "schedule.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["participant"], r["window"], r["start_local"]) for r in rows][:3] == [
        ("P1", "1", "08:00"), ("P1", "2", "13:00"), ("P1", "3", "19:00"),
    ]  # fmt: skip
    assert not any(
        secret in (tmp_path / "plain" / "schedule.csv").read_text() for secret in SECRETS
    )
    full = await cli("study", "export", "--database", pg_url, "-o", str(tmp_path / "full"),
                     "--unblind-reason", "final analysis")  # fmt: skip
    assert full.exit_code == 0, full.output
    with (tmp_path / "full" / "allocation.csv").open() as fh:
        allocation = {r["participant"]: r for r in csv.DictReader(fh)}
    assert allocation["P1"]["arm"] == arm and allocation["P1"]["label"] == "Study programme"
    one_line_refusal(
        await cli("study", "export", "--database", pg_url, "-o", str(tmp_path / "b"),
                  "--format", "bids", "--unblind-reason", "x"),
        "the allocation goes with --format csv",
    )  # fmt: skip
    scopes = await query(pg_url, "SELECT scope FROM acudevice_sealed.unblindings ORDER BY id")
    assert [s["scope"] for s in scopes] == ["participant", "report", "export"]


async def test_a_broker_away_leaves_the_enrolment_recorded_and_running_again_delivers(
    tmp_path: Path, pg_url: str
) -> None:
    await centre(pg_url, ["gw-a"])
    broker = Broker(tmp_path / "broker")  # its port chosen, nothing listening on it yet
    args = ["study", "enroll", "P1", "--study", str(EXAMPLE), "--database", pg_url,
            "--attribute", "site=leeds", "--broker", broker.url]  # fmt: skip
    away = await cli(*args)
    one_line_refusal(away, "P1 is enrolled but the protocol was not delivered")
    assert "run the same command again" in away.stderr
    assert await query(pg_url, "SELECT count(*) FROM acudevice_sealed.allocations") == [(1,)]
    broker.start()
    try:
        back = await cli(*args)
        assert back.exit_code == 0 and "P1 already enrolled" in back.stdout, back.output
        found = await broker.retained("acudevice/study/participants/+/protocol")
        assert list(found) == ["acudevice/study/participants/P1/protocol"]
    finally:
        broker.stop()


async def test_a_centre_of_schema_1_gains_the_trial_tables_and_keeps_its_data(pg_url: str) -> None:
    from acudevice.study.schema import MIGRATIONS, SCHEMA_VERSION

    conn = await connect(pg_url)
    try:
        await conn.execute("CREATE TABLE acudevice_schema (version integer NOT NULL)")
        await conn.execute(MIGRATIONS[0])
        await conn.execute("INSERT INTO acudevice_schema VALUES (1)")
        await conn.execute("INSERT INTO gateways (name) VALUES ('gw-old')")
        assert await migrate(conn) == 1
        assert await conn.fetchval("SELECT max(version) FROM acudevice_schema") == SCHEMA_VERSION
        assert await conn.fetchval("SELECT name FROM gateways") == "gw-old"
        assert await conn.fetchval("SELECT count(*) FROM enrolments") == 0
        assert await conn.fetchval("SELECT count(*) FROM acudevice_sealed.allocations") == 0
        assert await migrate(conn) == SCHEMA_VERSION, "once only"
    finally:
        await conn.close()
