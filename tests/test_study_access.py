"""The broker's ACL (acudevice mqtt-acl) lets the ingester and each gateway do their part only."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acudevice.bridge.acl import acl_text
from acudevice.bridge.mqtt import BrokerAddress, Credentials, MqttClient
from acudevice.bridge.records import RecordSender, send_records
from acudevice.bridge.topics import Topics
from acudevice.device.backoff import Backoff
from acudevice.store import Journal
from acudevice.store.records import encode_batch
from acudevice.study.ingest import Ingester
from tests.mqtt_broker import Broker
from tests.study_helpers import centre, count, drained, query, synthetic_session

pytestmark = pytest.mark.mqtt
USERS = {"gw-a": "pw-a", "gw-b": "pw-b", "ingester": "pw-i", "homeassistant": "h", "operator": "o"}


def authenticated(broker: Broker, user: str, client_id: str) -> MqttClient:
    return MqttClient(
        BrokerAddress.parse(broker.url),
        client_id=client_id,
        credentials=Credentials(user, USERS[user]),
    )


@contextlib.asynccontextmanager
async def running(coroutine: object) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine)  # type: ignore[arg-type]
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_ingester_user_reads_records_and_acks_and_a_gateway_cannot_pose_as_another(
    tmp_path: Path, pg_url: str
) -> None:
    broker = Broker(tmp_path / "broker", users=USERS, acl=acl_text(["gw-a", "gw-b"]))
    broker.start()
    try:
        await centre(pg_url, ["gw-a", "gw-b"])
        ingester = Ingester(pg_url)
        with Journal(tmp_path / "gw-a.db") as journal:
            synthetic_session(journal, gateway="gw-a", participant="P1", band="x", seconds=30)
            forged = synthetic_session(
                journal, gateway="gw-a", participant="P666", band="x", seconds=4
            )
            forged_uuid = journal.session(forged).session_uuid
            rows = journal.outbox.pending(0, 1000)
            # gw-b's credentials, publishing on gw-a's records topic: the broker drops it
            # (gw-a itself never sends these: they leave its outbox unsent)
            mine = [(p.seq, p.committed_at, p.body) for p in rows if forged_uuid in p.body]
            journal.acknowledge([(p[0], p[0]) for p in mine])
            sender = RecordSender(journal, Topics("acudevice", "gw-a"))
            async with running(ingester.run(authenticated(broker, "ingester", "ingest-1"))):
                async with asyncio.timeout(20):
                    await ingester.subscribed.wait()  # subscribed to $share/... as `ingester`
                forgery = encode_batch("gw-a", "cd" * 16, mine)
                await broker.pub("acudevice/gw-a/records", forgery, user="gw-b")
                async with running(
                    send_records(
                        sender, authenticated(broker, "gw-a", "gw-a"), backoff=Backoff(0.05, 0.5)
                    )
                ):
                    await drained(sender)
            await broker.pub(
                "acudevice/study/withdrawn/P1", json.dumps({"v": 1}), retain=True, user="ingester"
            )
            notices = await broker.retained("acudevice/study/withdrawn/+", user="gw-b")
        assert await count(pg_url, "samples") == 30 * 8
        assert [r[0] for r in await query(pg_url, "SELECT participant FROM sessions")] == ["P1"]
        assert list(notices) == ["acudevice/study/withdrawn/P1"]
    finally:
        broker.stop()


def test_study_is_reserved_and_not_a_gateway_id() -> None:
    from acudevice.bridge.topics import withdrawn_topic
    from acudevice.errors import InputError

    with pytest.raises(InputError, match="reserved"):
        Topics("acudevice", "study")
    topics = Topics("site/a", "gw1")
    assert (topics.records, topics.records_ack) == ("site/a/gw1/records", "site/a/gw1/records/ack")
    assert withdrawn_topic("site/a", "P1") == "site/a/study/withdrawn/P1"
