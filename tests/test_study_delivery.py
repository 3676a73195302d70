"""Every record a gateway journals reaches the study database once, whatever fails on the way.

Through a real Mosquitto and a real PostgreSQL: the sender (bridge/records.py) publishes the
journal's outbox, the ingester (study/ingest.py) commits and then acknowledges.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from acudevice.store import Journal
from tests.mqtt_broker import Broker
from tests.postgres_server import PostgresServer
from tests.study_helpers import (
    centre,
    count,
    drained,
    ingesting,
    query,
    real_session,
    replay,
    sending,
    synthetic_session,
    until,
)

pytestmark = pytest.mark.mqtt


async def test_a_real_session_arrives_whole_with_its_participant_and_is_gone_from_the_outbox(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "band.db") as source, Journal(tmp_path / "gw1.db") as journal:
        sid = replay(source, await real_session(source), journal, gateway="gw1", participant="P1")
        expected = len(journal.samples(sid))
        uid = journal.session(sid).session_uuid
        async with ingesting(broker, pg_url), sending(journal, broker, "gw1") as sender:
            await drained(sender)
        assert journal.outbox_status().entries == 0
    rows = await query(
        pg_url,
        "SELECT participant, gateway, band, outcome, rev FROM sessions WHERE session_uuid=$1",
        uid,
    )
    assert [tuple(r) for r in rows] == [("P1", "gw1", "band-1", "completed", 1)]
    assert expected > 100 and await count(pg_url, "samples") == expected


async def test_a_batch_delivered_twice_inserts_nothing_new(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "gw1.db") as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=60)
        pending = journal.outbox.pending(0, 10_000)
        from acudevice.store.records import encode_batch

        payload = encode_batch(
            "gw1", journal.outbox.epoch, [(p.seq, p.committed_at, p.body) for p in pending]
        )
    async with ingesting(broker, pg_url) as ingester:
        for _ in range(2):
            await broker.pub("acudevice/gw1/records", payload)

        async def both() -> bool:
            return ingester.stats.batches == 2

        await until(both)
    assert await count(pg_url, "samples") == 60 * 4 * 2
    assert ingester.stats.samples_inserted == 480 and ingester.stats.samples_duplicate == 480
    assert await count(pg_url, "sessions") == 1


async def test_the_broker_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "gw1.db") as journal:
        async with (
            ingesting(broker, pg_url) as ingester,
            sending(journal, broker, "gw1", batch_entries=20, ack_timeout_s=2.0) as sender,
        ):
            for i in range(6):
                synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=120)
                sender.wake()
                if i == 2:

                    async def some() -> bool:
                        return ingester.stats.batches > 0

                    await until(some)
                    broker.kill()
                    broker.start()  # same port; persistence off: the broker forgot everything
            await drained(sender, 60)
    assert await count(pg_url, "samples") == 6 * 120 * 4 * 2
    assert await count(pg_url, "sessions") == 6


async def test_postgresql_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker, pg_url: str, postgres_server: PostgresServer
) -> None:
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "gw1.db") as journal:
        async with (
            ingesting(broker, pg_url) as ingester,
            sending(journal, broker, "gw1", batch_entries=20) as sender,
        ):
            synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=300)
            sender.wake()

            async def some() -> bool:
                return ingester.stats.batches > 2

            await until(some)
            await asyncio.to_thread(postgres_server.restart, "immediate")
            synthetic_session(journal, gateway="gw1", participant="P2", band="b", seconds=300)
            sender.wake()
            await drained(sender, 60)
    assert await count(pg_url, "samples") == 2 * 300 * 4 * 2
    assert await count(pg_url, "sessions") == 2


async def test_a_gateway_offline_for_hours_of_device_time_drains_in_order(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    """Two bands, 3 hours each, journalled with no broker at all; then it connects."""
    await centre(pg_url, ["gw1"])
    with Journal(tmp_path / "gw1.db") as journal:
        for band, who in (("a", "P1"), ("b", "P2")):
            for _ in range(6):  # six half-hour sessions a band
                synthetic_session(journal, gateway="gw1", participant=who, band=band, seconds=1800)
        queued = journal.outbox_status()
        assert queued.units >= 2 * 3 * 3600 * 4 * 2
        async with ingesting(broker, pg_url), sending(journal, broker, "gw1") as sender:
            await drained(sender, 90)
    assert await count(pg_url, "samples") == 2 * 6 * 1800 * 4 * 2
    assert await count(pg_url, "sessions") == 12


async def test_records_sent_before_a_gateway_restart_are_sent_again_and_stored_once(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    """Acks lost (no ingester while the gateway ran): a new sender on the reopened journal
    sends everything again; the centre ends with each record once."""
    await centre(pg_url, ["gw1"])
    path = tmp_path / "gw1.db"
    with Journal(path) as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=60)
        async with sending(journal, broker, "gw1") as sender:

            async def sent() -> bool:
                return sender.stats.entries_sent > 0

            await until(sent)
    with Journal(path) as journal:
        assert journal.outbox_status().entries > 0  # nothing confirmed, nothing deleted
        async with ingesting(broker, pg_url), sending(journal, broker, "gw1") as sender:
            await drained(sender)
    assert await count(pg_url, "samples") == 480


async def test_an_ack_for_another_outbox_or_a_malformed_one_deletes_nothing(
    tmp_path: Path, broker: Broker
) -> None:
    with Journal(tmp_path / "gw1.db") as journal:
        synthetic_session(journal, gateway="gw1", participant="P1", band="a", seconds=10)
        before = journal.outbox_status().entries
        async with sending(journal, broker, "gw1") as sender:

            async def sent() -> bool:
                return sender.stats.entries_sent > 0

            await until(sent)
            other = json.dumps({"v": 1, "epoch": "0" * 32, "seqs": [[1, 10_000]]})
            await broker.pub("acudevice/gw1/records/ack", other)
            await broker.pub("acudevice/gw1/records/ack", b"\xff not json")

            async def ignored() -> bool:
                return sender.stats.acks_ignored == 2

            await until(ignored)
        assert journal.outbox_status().entries == before
