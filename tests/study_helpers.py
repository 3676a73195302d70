"""A study in a test: gateway journals, a record sender, the ingester and the central store.

Records come from real sessions where it matters: `real_session` runs nausea-relief on a
simulated band at full speed into a journal, and `replay` journals that session again as a
gateway would (with participant, gateway and band), in the recorder's 2-second chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from acudevice.bridge.mqtt import BrokerAddress, MqttClient
from acudevice.bridge.records import RecordSender, send_records
from acudevice.bridge.topics import Topics
from acudevice.device.backoff import Backoff
from acudevice.store import Journal
from acudevice.study.ingest import Ingester
from acudevice.study.registry import add_gateways
from acudevice.study.schema import connect, migrate
from tests.mqtt_broker import Broker

PREFIX = "acudevice"
CHUNK_MS = 2_000


async def real_session(journal: Journal, seed: int = 1) -> int:
    """One whole nausea-relief session on a simulated band (speed=max); its journal id."""
    from acudevice.plan.library import ProgramLibrary
    from acudevice.session.runner import Session

    program = ProgramLibrary().get("nausea-relief")
    result = await Session(program, [f"sim://?speed=max&seed={seed}"], journal=journal).run()
    return result.session_id


def replay(
    source: Journal,
    session_id: int,
    target: Journal,
    *,
    gateway: str,
    participant: str | None,
    band: str = "band-1",
) -> int:
    """Journal a recorded session again as `gateway` would have; the new session's id."""
    record = source.session(session_id)
    sid = target.begin_session(
        program=record.program,
        devices=record.devices,
        device_model=record.device_model,
        actuator=record.actuator,
        cap_level=record.cap_level,
        limits={},
        confirmations=record.confirmations,
        schedule={},
        repeats_planned=record.repeats_planned,
        rating_before=record.rating_before,
        participant=participant,
        gateway=gateway,
        band=band,
    )
    rows = [
        (s.channel, s.t_ms, s.measured_level, s.target_level, s.state)
        for s in sorted(source.samples(session_id), key=lambda s: (s.t_ms, s.channel))
    ]
    chunk: list[tuple[int, int, int, int, int]] = []
    for row in rows:
        if chunk and row[1] // CHUNK_MS != chunk[0][1] // CHUNK_MS:
            target.add_sample_rows(sid, chunk)
            chunk = []
        chunk.append(row)
    target.add_sample_rows(sid, chunk)
    for fault in source.faults(session_id):
        target.add_fault(
            sid, channel=fault.channel, t_ms=fault.t_ms, code=fault.code, message=fault.message
        )
    for event in source.comfort_events(session_id):
        target.add_comfort_event(
            sid,
            point=event.point,
            actuator=record.actuator,
            t_ms=event.t_ms,
            old_level=event.old_level,
            new_level=event.new_level,
        )
    target.end_session(
        sid,
        outcome=record.outcome,
        detail=record.detail,
        peak_level=record.peak_level,
        repeats_done=record.repeats_done,
    )
    return sid


def synthetic_session(
    journal: Journal,
    *,
    gateway: str,
    participant: str | None,
    band: str,
    seconds: int,
    channels: int = 2,
    started_at: float | None = None,
) -> int:
    """A session of `seconds` at 4 samples/s per channel, journalled in 2 s chunks, without
    running a band: for volumes (hours of data) a real session would take too long to make."""
    sid = journal.begin_session(
        program="nausea-relief",
        devices=["sim://"],
        device_model="wristband-p1",
        actuator="pressure",
        cap_level=20_000,
        limits={},
        confirmations=[],
        schedule={},
        repeats_planned=4,
        participant=participant,
        gateway=gateway,
        band=band,
    )
    if started_at is not None:
        journal._db.execute("UPDATE sessions SET started_at=? WHERE id=?", (started_at, sid))
    for t0 in range(0, seconds * 1000, CHUNK_MS):
        journal.add_sample_rows(
            sid,
            [
                (ch, t, 10_000 + t % 997, 10_000, 2)
                for t in range(t0, min(t0 + CHUNK_MS, seconds * 1000), 250)
                for ch in range(channels)
            ],
        )
    journal.end_session(sid, outcome="completed", peak_level=11_000, repeats_done=4)
    return sid


async def centre(url: str, gateways: list[str]) -> None:
    """Migrate the study database and register `gateways`."""
    conn = await connect(url)
    try:
        await migrate(conn)
        await add_gateways(conn, gateways)
    finally:
        await conn.close()


async def query(url: str, sql: str, *args: Any) -> list[Any]:
    conn = await connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def count(url: str, table: str) -> int:
    rows = await query(url, f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


def client(broker: Broker, name: str) -> MqttClient:
    return MqttClient(BrokerAddress.parse(broker.url), client_id=name)


@contextlib.asynccontextmanager
async def ingesting(broker: Broker, url: str, name: str = "ingest-1") -> AsyncIterator[Ingester]:
    ingester = Ingester(url, prefix=PREFIX)
    task = asyncio.create_task(ingester.run(client(broker, name)))
    try:
        async with asyncio.timeout(20):
            waiter = asyncio.create_task(ingester.subscribed.wait())
            await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()
        yield ingester
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def sending(
    journal: Journal, broker: Broker, gateway: str, **options: Any
) -> AsyncIterator[RecordSender]:
    sender = RecordSender(journal, Topics(PREFIX, gateway), **options)
    task = asyncio.create_task(
        send_records(sender, client(broker, f"{gateway}-records"), backoff=Backoff(0.05, 0.5))
    )
    try:
        yield sender
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], Awaitable[bool]], within_s: float = 30.0) -> None:
    """Poll `check` until true, or fail after `within_s`."""
    async with asyncio.timeout(within_s):
        while not await check():  # noqa: ASYNC110 - a database or a journal has no event to await
            await asyncio.sleep(0.05)


async def drained(sender: RecordSender, within_s: float = 30.0) -> None:
    async def empty() -> bool:
        return sender.idle()

    await until(empty, within_s)


def journal_samples(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM samples").fetchone()[0])


def now() -> float:
    return time.time()
