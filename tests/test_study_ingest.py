"""The ingester as a study centre runs it: killed, doubled, attacked, asked to forget someone."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from acudevice.store import Journal
from acudevice.store.records import encode_batch
from tests.mqtt_broker import Broker, Watcher
from tests.study_helpers import (
    centre,
    count,
    drained,
    ingesting,
    query,
    sending,
    synthetic_session,
    until,
)

pytestmark = pytest.mark.mqtt

UID = "00000000-0000-4000-8000-000000000001"


def good_session(
    uid: str = UID, participant: str = "P1", gateway: str = "gw1"
) -> dict[str, object]:
    return {
        "kind": "session", "session_uuid": uid, "participant": participant, "rev": 0,
        "gateway": gateway, "band": "a", "program": "nausea-relief",
        "device_model": "wristband-p1", "actuator": "pressure", "cap_level": 20000,
        "started_at": 1.7e9, "outcome": "running", "repeats_done": 0, "repeats_planned": 4,
    }  # fmt: skip


def batch(gateway: str, records: list[dict[str, object]], first_seq: int = 1) -> bytes:
    entries = [(first_seq + i, 1.7e9, json.dumps(r)) for i, r in enumerate(records)]
    return encode_batch(gateway, "ab" * 16, entries)


async def spawn_ingester(broker: Broker, url: str) -> asyncio.subprocess.Process:
    """`acudevice ingest` in its own process, returned once it has subscribed."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acudevice.cli", "ingest", "--broker", broker.url,
        "--database", url, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while b"ingesting" not in (line := await proc.stderr.readline()):
            assert line, "the ingester exited before subscribing"
    return proc


async def test_hostile_records_are_refused_and_logged_and_the_queue_flows_on(
    broker: Broker, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await centre(pg_url, ["gw1"])
    conn_rows = await query(pg_url, "INSERT INTO withdrawn VALUES ('P9') RETURNING 1")
    assert conn_rows
    wrong_types = {**good_session("00000000-0000-4000-8000-000000000002"), "rev": "1"}
    wrong_gateway = good_session("00000000-0000-4000-8000-000000000003", gateway="gw2")
    withdrawn = good_session("00000000-0000-4000-8000-000000000004", participant="P9")
    samples = {
        "kind": "samples",
        "session_uuid": UID,
        "rows": [[0, 0, 1, 1, 2], [0, 250, True, 1, 2]],
    }
    with caplog.at_level(logging.WARNING, "acudevice.study.ingest"):
        async with (
            ingesting(broker, pg_url) as ingester,
            Watcher(broker, "acudevice/gw1/records/ack/#") as acks,
        ):
            await broker.pub(
                "acudevice/gw1/records",
                batch("gw1", [good_session(), wrong_types, wrong_gateway, withdrawn, samples]),
            )
            await broker.pub("acudevice/gw1/records", b"{" + b" " * (1 << 20) + b"}")
            await broker.pub("acudevice/gw1/records", b"not json at all \xff")
            await broker.pub("acudevice/gw7/records", batch("gw7", [good_session()]))
            await broker.pub("acudevice/gw1/records", batch("gw2", [good_session()]))
            last = good_session("00000000-0000-4000-8000-000000000005", participant="P2")
            await broker.pub("acudevice/gw1/records", batch("gw1", [last], first_seq=6))

            async def flowed() -> bool:
                return ingester.stats.batches == 2

            await until(flowed)
            seen = await acks.wait_for(lambda s: '"seqs":[[6,6]]' in s.payload)
            assert [s.topic for s in acks.seen if s.topic.endswith("/ack")] == [
                "acudevice/gw1/records/ack",
                "acudevice/gw1/records/ack",
            ]
            assert seen.topic == "acudevice/gw1/records/ack"
            first_ack = next(s for s in acks.seen if s.topic.endswith("/ack"))
            assert '"seqs":[[1,5]]' in first_ack.payload  # the refused ones go too
    stored = await query(pg_url, "SELECT participant FROM sessions ORDER BY participant")
    assert [r[0] for r in stored] == ["P1", "P2"]
    assert await count(pg_url, "samples") == 0  # a bool where a number belongs: refused
    assert ingester.stats.records_refused == 4 and ingester.stats.batches_dropped == 4
    log = caplog.text
    assert "gateway gw1: refused record 2: session.rev: Input should be a valid integer" in log
    assert "gateway gw1: refused record 3: a session of gateway 'gw2'" in log
    assert "gateway gw1: refused record 4: participant P9 has withdrawn" in log
    assert "gateway gw1: refused record 5: samples.rows.1.2" in log
    assert "gateway gw1: dropped a batch: a batch of 1048578 bytes is over the limit" in log
    assert "gateway gw1: dropped a batch: not a records batch" in log
    assert "gateway gw7: dropped a batch: gateway not registered" in log
    assert "gateway gw1: dropped a batch: the batch names gateway 'gw2'" in log
    assert "\xff" not in log


async def test_the_ingester_sigkilled_mid_session_and_restarted_stores_everything_once(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    first = await spawn_ingester(broker, pg_url)
    try:
        with Journal(tmp_path / "gw1.db") as journal:
            for i in range(4):
                synthetic_session(
                    journal, gateway="gw1", participant=f"P{i}", band="a", seconds=600
                )
            async with sending(
                journal, broker, "gw1", batch_entries=25, ack_timeout_s=1.0
            ) as sender:

                async def partly() -> bool:
                    return 0 < await count(pg_url, "samples") < 4 * 600 * 8

                await until(partly)
                first.send_signal(signal.SIGKILL)
                await first.wait()
                second = await spawn_ingester(broker, pg_url)
                try:
                    await drained(sender, 60)
                finally:
                    second.terminate()
                    await second.wait()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert await count(pg_url, "samples") == 4 * 600 * 4 * 2
    assert await count(pg_url, "sessions") == 4
    done = await query(pg_url, "SELECT count(*) FROM sessions WHERE outcome = 'completed'")
    assert done[0][0] == 4


async def test_two_ingesters_on_a_shared_subscription_share_the_work_without_duplicates(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1", "gw2"])
    with Journal(tmp_path / "gw1.db") as one, Journal(tmp_path / "gw2.db") as two:
        for journal, gateway in ((one, "gw1"), (two, "gw2")):
            for i in range(3):
                synthetic_session(
                    journal, gateway=gateway, participant=f"P{i}", band="a", seconds=600
                )
        async with (
            ingesting(broker, pg_url, "ingest-a") as a,
            ingesting(broker, pg_url, "ingest-b") as b,
            sending(one, broker, "gw1", batch_entries=10) as s1,
            sending(two, broker, "gw2", batch_entries=10) as s2,
        ):
            await drained(s1, 60)
            await drained(s2, 60)
    assert a.stats.batches > 0 and b.stats.batches > 0
    assert await count(pg_url, "samples") == 2 * 3 * 600 * 8
    assert a.stats.samples_duplicate + b.stats.samples_duplicate == 0


async def test_a_journal_brought_back_by_hand_adds_only_what_the_broker_did_not(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1", "laptop"])
    path = tmp_path / "gw1.db"
    with Journal(path) as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=60)
        async with ingesting(broker, pg_url), sending(journal, broker, "gw1") as sender:
            await drained(sender)
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=60)
        synthetic_session(journal, gateway=None, participant=None, band="x", seconds=30)  # type: ignore[arg-type]
    before = path.read_bytes()
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acudevice.cli", "ingest", "--journal", str(path),
        "--gateway", "laptop", "--database", pg_url, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    printed, _ = await done.communicate()
    assert done.returncode == 0
    assert "3 session(s); 720 new sample(s), 480 already there" in printed.decode()
    assert path.read_bytes() == before  # the journal brought back is never written
    owners = await query(pg_url, "SELECT gateway, count(*) FROM sessions GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in owners] == [("gw1", 2), ("laptop", 1)]


async def test_a_journal_for_an_unregistered_gateway_is_refused_in_one_line(
    tmp_path: Path, pg_url: str
) -> None:
    await centre(pg_url, [])
    with Journal(tmp_path / "j.db") as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=4)
    done = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acudevice.cli", "ingest", "--journal", str(tmp_path / "j.db"),
        "--gateway", "gw1", "--database", pg_url, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, printed = await done.communicate()
    assert done.returncode == 2
    message = printed.decode().strip()
    assert "gateway not registered" in message and "\n" not in message
    assert await count(pg_url, "samples") == 0


async def test_withdrawal_deletes_centrally_tells_the_gateways_and_refuses_later_records(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "gw1.db") as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=60)
        synthetic_session(journal, gateway="gw1", participant="P2", band="b", seconds=60)
        async with ingesting(broker, pg_url) as ingester, sending(journal, broker, "gw1") as sender:
            await drained(sender)
            done = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "acudevice.cli", "study", "withdraw", "P1",
                "--database", pg_url, "--broker", broker.url, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            printed, _ = await done.communicate()
            assert done.returncode == 0
            assert "P1: 1 session(s) and 480 sample(s) deleted centrally" in printed.decode()
            # a gateway that has not yet heard of it sends one more of P1's sessions
            synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=10)
            sender.wake()
            await drained(sender)
    assert ingester.stats.records_refused > 0
    rows = await query(pg_url, "SELECT DISTINCT participant FROM sessions")
    assert [r[0] for r in rows] == ["P2"]
    assert await count(pg_url, "samples") == 480
    retained = await broker.retained("acudevice/study/withdrawn/#")
    notice = json.loads(retained["acudevice/study/withdrawn/P1"])
    assert notice["participant"] == "P1" and notice["v"] == 1


def test_withdraw_refuses_an_id_that_is_not_a_pseudonym(pg_url: str) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "acudevice.cli", "study", "withdraw", "P1/#", "--database", pg_url,
         "--broker", "mqtt://127.0.0.1:1"],
        capture_output=True, text=True, timeout=60, check=False, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 2
    assert "not a participant pseudonym" in done.stderr and "Traceback" not in done.stderr
