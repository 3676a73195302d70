"""The central ingester: records from every gateway, through the broker, into PostgreSQL.

It subscribes to `$share/<group>/<prefix>/+/records` (an MQTT shared subscription: start
several ingesters with the same group and the broker spreads the batches over them), writes
each group of batches in one transaction, commits, and only then acknowledges each batch on
`<prefix>/<gateway>/records/ack`. Whatever happens before the ack (the ingester killed, the
broker or PostgreSQL gone) the gateway still holds the records and sends them again; the
keys make the second delivery insert nothing.

A lost database connection is retried with backoff, holding the batches in hand; a batch
the database itself refuses (a value it cannot store) is logged and acknowledged, so no
record can stop the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from acudevice.bridge.mqtt import BrokerError, BrokerRefused, MqttClient, MqttLink
from acudevice.device.backoff import Backoff
from acudevice.store.records import Ack, ranges
from acudevice.study.checks import Admitted, Parsed, Refused, admit, gateway_of, parse_batch
from acudevice.study.schema import WRITE_LOCK, CentreError, connect, migrate
from acudevice.study.writer import prepare, write

log = logging.getLogger("acudevice.study.ingest")

QUEUE = 256
"""Batches waiting for the database; past it the reader waits (and the broker holds them)."""


@dataclass
class IngestStats:
    batches: int = 0
    batches_dropped: int = 0
    records: int = 0
    records_refused: int = 0
    samples_inserted: int = 0
    samples_duplicate: int = 0
    commits: int = 0
    lags_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=200_000)
    )
    """Gateway commit to central commit, per record (most recent first out)."""


def is_connection_error(exc: BaseException) -> bool:
    """The database went away (retry later), as opposed to refusing what we sent."""
    import asyncpg

    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | CentreError,
    )


class Ingester:
    def __init__(
        self,
        database_url: str,
        *,
        prefix: str = "acudevice",
        group: str = "acudevice-ingest",
        max_group: int = 32,
    ) -> None:
        self.database_url = database_url
        self.prefix = prefix
        self.group = group
        self.max_group = max_group
        self.stats = IngestStats()
        self._conn: Any = None
        self._link: MqttLink | None = None
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE)
        self.subscribed = asyncio.Event()

    @property
    def subscription(self) -> str:
        return f"$share/{self.group}/{self.prefix}/+/records"

    async def run(self, client: MqttClient) -> None:
        """Ingest until cancelled. The schema is migrated first (CentreError if unreachable)."""
        conn = await connect(self.database_url)
        try:
            await migrate(conn)
            await prepare(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._write_loop())
                tasks.create_task(self._broker_loop(client))
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await self._conn.close()

    async def _broker_loop(self, client: MqttClient) -> None:
        backoff = Backoff(0.2, 10.0)
        while True:
            try:
                async with client.connect() as link:
                    backoff.reset()
                    await link.subscribe(self.subscription, qos=1)
                    self._link = link
                    self.subscribed.set()
                    async for message in link.messages():
                        gateway = gateway_of(message.topic, self.prefix)
                        if gateway is not None:
                            await self._queue.put((gateway, message.payload))
            except BrokerRefused:
                raise
            except BrokerError as exc:
                log.warning("broker %s: %s", client.address, exc)
            finally:
                self._link = None
                self.subscribed.clear()
            await asyncio.sleep(backoff.delay())

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            parsed: list[Parsed] = []
            for gateway, payload in group:
                try:
                    parsed.append(parse_batch(gateway, payload))
                except Refused as exc:
                    self.stats.batches_dropped += 1
                    log.warning("gateway %s: dropped a batch: %s", gateway, exc)
            if parsed:
                await self._store(parsed)

    async def _store(self, parsed: list[Parsed]) -> None:
        """Commit the group (retrying while the database is away), then acknowledge."""
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                kept = await self._commit(parsed)
                break
            except Exception as exc:
                if not is_connection_error(exc):
                    if len(parsed) > 1:  # find the batch the database refuses, alone
                        for one in parsed:
                            await self._store([one])
                        return
                    log.warning(
                        "gateway %s: the database refused a batch: %s", parsed[0].gateway, exc
                    )
                    kept = parsed
                    break
                log.warning("database: %s; retrying", exc)
                await self._reconnect(backoff.delay())
        for batch in kept:
            await self._ack(batch)

    async def _commit(self, parsed: list[Parsed]) -> list[Parsed]:
        conn = self._conn
        if conn is None or conn.is_closed():
            raise CentreError("not connected")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", WRITE_LOCK)
            gateways = {r[0] for r in await conn.fetch("SELECT name FROM gateways")}
            withdrawn = {r[0] for r in await conn.fetch("SELECT participant FROM withdrawn")}
            kept: list[Parsed] = []
            admitted: list[Admitted] = []
            for batch in parsed:
                try:
                    admitted.append(admit(batch, gateways, withdrawn))
                    kept.append(batch)
                except Refused as exc:
                    self.stats.batches_dropped += 1
                    log.warning("gateway %s: dropped a batch: %s", batch.gateway, exc)
            records = [r for a in admitted for r in a.records]
            written = await write(conn, records)
            if kept:
                await conn.execute(
                    "UPDATE gateways SET last_seen = now() WHERE name = any($1::text[])",
                    sorted({b.gateway for b in kept}),
                )
        now = time.time()
        s = self.stats
        s.commits += 1
        s.batches += len(kept)
        s.records += len(records)
        s.records_refused += sum(a.refused for a in admitted)
        s.samples_inserted += written.samples_inserted
        s.samples_duplicate += written.samples_offered - written.samples_inserted
        s.lags_s.extend(now - t for a in admitted for t in a.committed_at)
        return kept

    async def _reconnect(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        with contextlib.suppress(CentreError):
            conn = await connect(self.database_url)
            await prepare(conn)
            self._conn = conn

    async def _ack(self, batch: Parsed) -> None:
        link = self._link
        if link is None or not batch.seqs:
            return  # the gateway sends it again; it will insert nothing
        ack = Ack(epoch=batch.epoch, seqs=ranges(batch.seqs))
        with contextlib.suppress(BrokerError):
            await link.publish(
                f"{self.prefix}/{batch.gateway}/records/ack", ack.model_dump_json(), qos=1
            )


def client_id() -> str:
    """Unique per process: two ingesters with one id would knock each other off the broker."""
    return f"acudevice-ingest-{socket.gethostname()[:20]}-{os.getpid()}"
