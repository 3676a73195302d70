"""A study run through a gateway: the bridge, a real Mosquitto, the ingester and PostgreSQL.

The bridge screens each band's sessions for that band's participant, journals them as
theirs, sends every record to the centre, and acts on the centre's withdrawal notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from acudevice.bridge.band import BandAgent
from acudevice.bridge.participants import Participants
from acudevice.bridge.topics import withdrawn_topic
from acudevice.safety.profile import load_profile
from acudevice.store import Journal
from acudevice.store.database import default_path
from acudevice.study.withdrawal import notice
from tests.bridge_helpers import (
    GW,
    LONG,
    command,
    install_quick_program,
    payload,
    running_bridge,
    start_body,
    topic,
)
from tests.bridge_helpers import until as until_true
from tests.journal_helpers import begin_row
from tests.mqtt_broker import Broker, Seen, Watcher
from tests.study_helpers import PREFIX, client, count, drained, ingesting, query, until

pytestmark = pytest.mark.mqtt


def finished(band: str) -> Callable[[Seen], bool]:
    def match(seen: Seen) -> bool:
        return seen.topic == topic(band, "events") and payload(seen)["event"] == "session-finished"

    return match


def idle(agent: BandAgent) -> bool:
    """No session, and the band itself at rest (not still venting the last one)."""
    return agent.session is None and agent.state().device_state == "IDLE"


async def register(pg_url: str) -> None:
    from tests.study_helpers import centre

    await centre(pg_url, [GW])


async def central_counts(pg_url: str, participant: str | None = None) -> dict[str, int]:
    """Rows per table at the centre (for one participant's sessions, or all)."""
    where = "" if participant is None else f" WHERE participant = '{participant}'"
    found = {}
    for table in ("samples", "faults", "comfort_events", "intensity_changes"):
        rows = await query(
            pg_url,
            f"SELECT count(*) FROM {table} WHERE session_uuid IN"
            f" (SELECT session_uuid FROM sessions{where})",
        )
        found[table] = int(rows[0][0])
    rows = await query(pg_url, f"SELECT count(*) FROM sessions{where}")
    found["sessions"] = int(rows[0][0])
    return found


def journal_counts(path: Path, participant: str | None = None) -> dict[str, int]:
    """The same figures from a gateway's journal file, read beside the process writing it."""
    where = "" if participant is None else f" WHERE participant = '{participant}'"
    with contextlib.closing(sqlite3.connect(path)) as db:
        found = {
            table: int(
                db.execute(
                    f"SELECT count(*) FROM {table} WHERE session_id IN"
                    f" (SELECT id FROM sessions{where})"
                ).fetchone()[0]
            )
            for table in ("samples", "faults", "comfort_events", "intensity_changes")
        }
        found["sessions"] = int(db.execute(f"SELECT count(*) FROM sessions{where}").fetchone()[0])
    return found


async def test_two_participants_on_one_gateway_keep_their_own_profiles_and_comfort_maxima(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    install_quick_program()
    careful = tmp_path / "p2.toml"
    careful.write_text("blood_thinners = true\n")  # the cap halves to 10 kPa without a confirmation
    participants = Participants({"a": "P1", "b": "P2"}, {"P2": load_profile(careful)})
    bands = {"a": "sim://?speed=10&seed=1", "b": "sim://?speed=10&seed=2"}
    await register(pg_url)
    with Journal(tmp_path / "gw1.db") as journal:
        async with (
            ingesting(broker, pg_url),
            running_bridge(
                broker, bands, journal=journal, participants=participants, allow_remote_start=True
            ) as bridge,
            Watcher(broker, f"acudevice/{GW}/#") as watch,
        ):
            sender = bridge.study.sender
            assert sender is not None
            # P2's profile refuses what P1's (the gateway's) allows: 12 kPa over a halved cap.
            theirs = await command(broker, watch, "b", "start", start_body(LONG, "s1"), "s1")
            assert theirs["status"] == "refused" and "blood thinners" in theirs["reason"]
            mine = await command(broker, watch, "a", "start", start_body(LONG, "s2"), "s2")
            assert mine["status"] == "ok", mine["reason"]
            state = bridge.agents["a"].state()
            assert state.participant == "P1"

            await until_true(lambda: (bridge.agents["a"].state().measured or 0) > 4.0)
            pressed = await command(broker, watch, "a", "too-strong", '{"request_id": "t1"}', "t1")
            assert pressed["status"] == "ok"
            comfort = await watch.wait_for(
                lambda s: s.topic == topic("a", "events") and payload(s)["event"] == "comfort"
            )
            assert payload(comfort)["participant"] == "P1"
            await command(broker, watch, "a", "stop", '{"request_id": "x1"}', "x1")
            await until_true(lambda: bridge.agents["a"].session is None)

            remembered = journal.comfort_max("pressure", participant="P1")
            assert list(remembered) == ["PC6"] and remembered["PC6"] < 6_000
            assert journal.comfort_max("pressure", participant="P2") == {}
            assert journal.comfort_max("pressure") == {}  # nobody's on a single host either

            # P1's maximum refuses a 6 kPa program for P1, and neither refuses nor scales P2's.
            again = await command(broker, watch, "a", "start", start_body("quick-test", "s3"), "s3")
            assert again["status"] == "refused" and "comfortable maximum" in again["reason"]
            other = await command(broker, watch, "b", "start", start_body("quick-test", "s4"), "s4")
            assert other["status"] == "ok", other["reason"]
            view = bridge.agents["b"].slot.view
            assert view is not None
            assert view.full_level == 6_000 and view.intensity_percent == 100
            assert view.cap_level is not None and view.cap_level > remembered["PC6"]
            done = await watch.wait_for(finished("b"))
            assert payload(done)["outcome"] == "completed"
            assert payload(done)["participant"] == "P2"
            await drained(sender)

        sessions = {
            r["participant"]: r
            for r in await query(
                pg_url,
                "SELECT participant, gateway, band, program, outcome, peak_level FROM sessions",
            )
        }
        assert sessions["P1"]["band"] == "a" and sessions["P1"]["outcome"] == "stopped"
        assert sessions["P2"]["band"] == "b" and sessions["P2"]["gateway"] == GW
        assert sessions["P2"]["outcome"] == "completed" and sessions["P2"]["peak_level"] > 5_500
        comfort_rows = await query(
            pg_url,
            "SELECT s.participant, c.new_level FROM comfort_events c JOIN sessions s"
            " USING (session_uuid)",
        )
        assert [tuple(r) for r in comfort_rows] == [("P1", remembered["PC6"])]
        assert await central_counts(pg_url) == journal_counts(journal.path)


async def _bridge_process(
    broker: Broker, tmp_path: Path, *extra: str, log: str = "bridge.log"
) -> asyncio.subprocess.Process:
    """`acudevice bridge` on band `left` worn by P1 and band `right` worn by P2, whose
    profile (blood thinners: the cap halved) refuses nausea-relief."""
    careful = tmp_path / "p2.toml"
    careful.write_text("blood_thinners = true\n")
    with (tmp_path / log).open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "acudevice.cli",
            "bridge",
            "--broker",
            broker.url,
            "--gateway",
            GW,
            "--device",
            "left=sim://?speed=10&seed=5",
            "--device",
            "right=sim://?speed=10&seed=6",
            "--participant",
            "left=P1",
            "--participant",
            "right=P2",
            "--participant-profile",
            f"P2={careful}",
            *extra,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
        )


@contextlib.asynccontextmanager
async def reaped(proc: asyncio.subprocess.Process) -> AsyncIterator[asyncio.subprocess.Process]:
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_gateway_sigkilled_mid_session_delivers_it_as_interrupted_every_record_once(
    broker: Broker, pg_url: str, tmp_path: Path
) -> None:
    """--fleet-run starts P1's session and, screened with P2's profile, refuses P2's; the
    process is killed with P1's running, and started again."""
    await register(pg_url)
    async with ingesting(broker, pg_url) as ingester:
        first_run = _bridge_process(broker, tmp_path, "--fleet-run", LONG, log="first.log")
        async with reaped(await first_run) as first:

            async def running_with_samples() -> bool:
                rows = await query(pg_url, "SELECT outcome FROM sessions")
                return [r[0] for r in rows] == ["running"] and await count(pg_url, "samples") > 40

            await until(running_with_samples)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        said = (tmp_path / "first.log").read_text()
        assert "right: " in said and "blood thinners" in said, said
        async with reaped(await _bridge_process(broker, tmp_path)) as second:

            async def interrupted_and_whole() -> bool:
                rows = await query(pg_url, "SELECT outcome, participant, band FROM sessions")
                if [tuple(r) for r in rows] != [("interrupted", "P1", "left")]:
                    return False
                return await central_counts(pg_url) == journal_counts(default_path())

            await until(interrupted_and_whole)
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
    assert ingester.stats.records_refused == 0
    local = journal_counts(default_path())
    assert local["sessions"] == 1 and local["samples"] > 40
    assert await central_counts(pg_url) == local
    with contextlib.closing(sqlite3.connect(default_path())) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # all confirmed


@contextlib.asynccontextmanager
async def records_seen(broker: Broker) -> AsyncIterator[list[dict[str, Any]]]:
    """Every record batch the gateway publishes, parsed (batches can pass 64 KiB, more than a
    mosquitto_sub line reader takes)."""
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with client(broker, "records-spy").connect() as link:
            await link.subscribe(f"{PREFIX}/{GW}/records", qos=1)
            ready.set()
            async for message in link.messages():
                seen.append(json.loads(message.payload))

    task = asyncio.create_task(listen())
    try:
        async with asyncio.timeout(10):
            await ready.wait()
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def withdraw_by_command(broker: Broker, pg_url: str, participant: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acudevice.cli",
        "study",
        "withdraw",
        participant,
        "--database",
        pg_url,
        "--broker",
        broker.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_withdrawal_removes_data_centrally_and_on_the_gateway_which_sends_no_more(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    install_quick_program()
    participants = Participants({"a": "P1", "b": "P2"})
    bands = {"a": "sim://?speed=10&seed=1", "b": "sim://?speed=max&seed=2"}
    await register(pg_url)
    with Journal(tmp_path / "gw1.db") as journal:
        async with (
            ingesting(broker, pg_url),
            records_seen(broker) as batches,
            running_bridge(
                broker, bands, journal=journal, participants=participants, allow_remote_start=True
            ) as bridge,
            Watcher(broker, f"acudevice/{GW}/#") as watch,
        ):
            sender = bridge.study.sender
            assert sender is not None
            for band in ("a", "b"):  # a whole session each, at the centre
                await bridge.start_local(band, "quick-test")
            await until_true(lambda: all(idle(a) for a in bridge.agents.values()))
            # ... and a P1 session still running when the notice comes, with a comfort maximum
            started = await command(broker, watch, "a", "start", start_body(LONG, "s1"), "s1")
            assert started["status"] == "ok", started["reason"]
            await until_true(lambda: (bridge.agents["a"].state().measured or 0) > 3.0)
            await command(broker, watch, "a", "too-strong", '{"request_id": "t1"}', "t1")
            await watch.wait_for(
                lambda s: s.topic == topic("a", "events") and payload(s)["event"] == "comfort"
            )
            assert journal.comfort_max("pressure", participant="P1") != {}

            async def p1_running_at_the_centre() -> bool:
                rows = await query(pg_url, "SELECT outcome FROM sessions WHERE participant='P1'")
                return sorted(r[0] for r in rows) == ["completed", "running"]

            await until(p1_running_at_the_centre)
            p2_before = await central_counts(pg_url, "P2")
            assert p2_before["sessions"] == 1 and p2_before["samples"] > 0

            mark = len(watch.seen)
            said = await withdraw_by_command(broker, pg_url, "P1")
            assert "P1:" in said and "deleted centrally" in said
            ended = payload(await watch.wait_for(finished("a"), since=mark))
            assert ended["outcome"] == "stopped" and "P1 withdrew" in ended["detail"]
            await until_true(lambda: bridge.agents["a"].session is None)

            # On the gateway: nothing of P1's is left, and their sessions are refused.
            assert journal.withdrawn() == ["P1"]
            assert journal_counts(journal.path, "P1")["sessions"] == 0
            assert journal.comfort_max("pressure", participant="P1") == {}
            queued = [json.loads(p.body) for p in journal.outbox.pending(0, 100_000)]
            assert all(r.get("participant") != "P1" for r in queued)
            refused = await command(
                broker, watch, "a", "start", start_body("quick-test", "s2"), "s2"
            )
            assert refused["status"] == "refused"
            assert refused["reason"].startswith("participant P1 has withdrawn")
            await bridge.start_local("b", "quick-test")  # P2 goes on
            await until_true(lambda: idle(bridge.agents["b"]))
            sender.wake()
            await drained(sender)

            withdrawn_at = journal._db.execute(
                "SELECT at FROM withdrawn WHERE participant='P1'"
            ).fetchone()[0]

        # Nothing of P1's queued after the withdrawal was ever published (older rows were
        # deleted with it, so they could not be sent again); P2's records went on flowing.
        entries = [e for batch in batches for e in batch["entries"]]
        later = [e for e in entries if e["t"] >= withdrawn_at]
        assert later and all(e["r"].get("participant") == "P2" for e in later)
        assert not [e for e in entries if e["r"].get("participant") not in ("P1", "P2")]

        # At the centre: P1 is gone, P2 is whole.
        assert await central_counts(pg_url, "P1") == dict.fromkeys(
            ("samples", "faults", "comfort_events", "intensity_changes", "sessions"), 0
        )
        assert await central_counts(pg_url, "P2") == journal_counts(journal.path, "P2")
        assert (await central_counts(pg_url, "P2"))["sessions"] == 2


async def test_the_broker_restarted_mid_session_still_delivers_every_record_once(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    install_quick_program()
    bands = {"a": "sim://?speed=6&seed=3"}
    await register(pg_url)
    with Journal(tmp_path / "gw1.db") as journal:
        async with (
            ingesting(broker, pg_url) as ingester,
            running_bridge(
                broker,
                bands,
                journal=journal,
                participants=Participants({"a": "P1"}),
                allow_remote_start=True,
                record_ack_timeout_s=2.0,  # batches sent before the ingester is back are lost
            ) as bridge,
        ):
            sender = bridge.study.sender
            assert sender is not None
            async with Watcher(broker, f"acudevice/{GW}/#") as watch:
                await bridge.start_local("a", "quick-test")  # local: it goes on through the outage
                await until_true(lambda: (bridge.agents["a"].state().measured or 0) > 3.0)
                lowered = await command(
                    broker, watch, "a", "intensity", '{"request_id": "i1", "percent": 60}', "i1"
                )
                assert lowered["status"] == "ok", lowered["reason"]

            async def some() -> bool:
                return ingester.stats.batches > 2

            await until(some)
            assert bridge.agents["a"].session is not None
            broker.kill()
            broker.start()  # same port, persistence off: the broker forgot everything
            await until_true(lambda: bridge.agents["a"].session is None, within_s=60)
            await drained(sender, 60)
    rows = await query(pg_url, "SELECT outcome, participant FROM sessions")
    assert [tuple(r) for r in rows] == [("completed", "P1")]
    changes = await query(pg_url, "SELECT percent FROM intensity_changes")
    assert [r[0] for r in changes] == [60]
    local = journal_counts(tmp_path / "gw1.db")
    assert local["samples"] > 50 and local["intensity_changes"] == 1
    assert await central_counts(pg_url) == local


async def test_a_gateway_away_at_the_withdrawal_hears_the_retained_notice_and_a_bad_one_deletes_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    with Journal(tmp_path / "gw1.db") as journal:
        for who in ("P1", "P2", "P3"):
            begin_row(journal, participant=who, gateway=GW, band="a")
        notices: dict[str, str | bytes] = {
            "P1": notice("P1"),  # sent while the gateway was away
            "P2": notice("P3"),  # names someone else than its topic
            "P4": b"\xff not json",
        }
        for who, body in notices.items():
            await broker.pub(withdrawn_topic(PREFIX, who), body, retain=True)
        async with running_bridge(
            broker,
            {"a": "sim://?speed=max"},
            journal=journal,
            participants=Participants({"a": "P1"}),
            allow_remote_start=True,
        ) as bridge:
            # A live notice after the retained ones: once it is handled, so are they.
            await broker.pub(withdrawn_topic(PREFIX, "P5"), notice("P5"))
            await until_true(lambda: "P5" in journal.withdrawn())
            assert journal.withdrawn() == ["P1", "P5"]
            assert bridge.study.refusal("a") is not None
            async with Watcher(broker, f"acudevice/{GW}/#") as watch:
                reply = await command(
                    broker, watch, "a", "start", start_body("nausea-relief", "s1"), "s1"
                )
            assert reply["status"] == "refused" and "P1 has withdrawn" in reply["reason"]
        left = sorted(r.participant or "" for r in journal.sessions())
        assert left == ["P2", "P3"]
