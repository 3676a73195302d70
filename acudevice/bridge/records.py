"""Sending the journal's outbox to the centre, deleting only what the centre confirms.

The gateway publishes batches of outbox rows with QoS 1 to `<prefix>/<gateway>/records`;
the ingester acknowledges each batch on `<prefix>/<gateway>/records/ack` after its database
commit, and only then are the rows deleted. Up to `window` batches are in flight at once.
After any reconnect or restart everything still in the outbox is sent again, from the
oldest row, and so is everything in flight when a batch goes unacknowledged for
`ack_timeout_s` (go-back-N): the centre de-duplicates, so sending twice costs only time.

Whoever owns the broker connection runs the sender on each new link: subscribe to
`ack_topic`, run `run(link)` beside the message loop, and hand messages on `ack_topic` to
`on_ack` (`send_records` does exactly that for a sender with a connection of its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from pydantic import ValidationError

from acudevice.bridge.mqtt import BrokerError, BrokerRefused, MqttClient, MqttLink
from acudevice.bridge.topics import Topics
from acudevice.device.backoff import Backoff
from acudevice.store import Journal, StoreError
from acudevice.store.records import MAX_BATCH_BYTES, Ack, encode_batch

log = logging.getLogger("acudevice.bridge.records")


@dataclass
class SenderStats:
    batches_sent: int = 0
    entries_sent: int = 0
    entries_acked: int = 0
    resends: int = 0
    """Times the sender went back to the oldest unacknowledged row."""
    acks_ignored: int = 0


class RecordSender:
    def __init__(
        self,
        journal: Journal,
        topics: Topics,
        *,
        window: int = 4,
        batch_entries: int = 500,
        batch_bytes: int = 256 * 1024,
        ack_timeout_s: float = 30.0,
        poll_s: float = 0.5,
    ) -> None:
        if not 0 < batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"batch_bytes must be 1..{MAX_BATCH_BYTES}")
        self.journal = journal
        self.topics = topics
        self.window = window
        self.batch_entries = batch_entries
        self.batch_bytes = batch_bytes
        self.ack_timeout_s = ack_timeout_s
        self.poll_s = poll_s
        self.stats = SenderStats()
        self._inflight: dict[int, tuple[int, float]] = {}
        """First seq of each batch in flight -> (its last seq, when it was sent)."""
        self._cursor = 0
        self._changed = asyncio.Event()

    @property
    def topic(self) -> str:
        return self.topics.records

    @property
    def ack_topic(self) -> str:
        return self.topics.records_ack

    def wake(self) -> None:
        """New rows are in the outbox: send now rather than at the next poll."""
        self._changed.set()

    def idle(self) -> bool:
        """Nothing in flight and nothing queued."""
        return not self._inflight and self.journal.outbox_status().entries == 0

    def on_ack(self, payload: bytes) -> None:
        """The centre committed a batch: delete its rows. Anything malformed is ignored
        (the rows stay, and are sent again), as is an ack for another outbox."""
        try:
            ack = Ack.model_validate_json(payload)
        except ValidationError:
            self.stats.acks_ignored += 1
            log.warning("ignored a malformed ack on %s", self.ack_topic)
            return
        if ack.epoch != self.journal.outbox.epoch:
            self.stats.acks_ignored += 1
            return
        try:
            self.stats.entries_acked += self.journal.acknowledge(ack.seqs)
        except StoreError as exc:  # rows stay; they go again and the centre drops them
            log.warning("could not delete acknowledged records: %s", exc)
            return
        for first in list(self._inflight):
            if any(lo <= first <= hi for lo, hi in ack.seqs):
                del self._inflight[first]
        self._changed.set()

    async def run(self, link: MqttLink) -> None:
        """Send until cancelled or the link fails (BrokerError); call on every new link."""
        self._rewind(count=False)
        while True:
            self._expire()
            if len(self._inflight) < self.window and await self._send_one(link):
                continue
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._wait_s()):
                    await self._changed.wait()

    async def _send_one(self, link: MqttLink) -> bool:
        rows = self.journal.outbox.pending(self._cursor, self.batch_entries)
        if not rows:
            return False
        size, taken = 200, list[tuple[int, float, str]]()
        for row in rows:
            size += len(row.body) + 48
            if taken and size > self.batch_bytes:
                break
            taken.append((row.seq, row.committed_at, row.body))
        payload = encode_batch(self.topics.gateway, self.journal.outbox.epoch, taken)
        first, last = taken[0][0], taken[-1][0]
        self._inflight[first] = (last, time.monotonic())
        self._cursor = last
        await link.publish(self.topic, payload, qos=1)
        self.stats.batches_sent += 1
        self.stats.entries_sent += len(taken)
        return True

    def _expire(self) -> None:
        if not self._inflight:
            return
        oldest = min(sent for _, sent in self._inflight.values())
        if time.monotonic() - oldest > self.ack_timeout_s:
            log.info(
                "no ack for %.0f s: sending the outbox again from its oldest row",
                self.ack_timeout_s,
            )
            self._rewind(count=True)

    def _rewind(self, *, count: bool) -> None:
        if count and (self._inflight or self._cursor):
            self.stats.resends += 1
        self._inflight.clear()
        self._cursor = 0

    def _wait_s(self) -> float:
        if not self._inflight:
            return self.poll_s
        oldest = min(sent for _, sent in self._inflight.values())
        return max(0.01, min(self.poll_s, oldest + self.ack_timeout_s - time.monotonic()))


async def send_records(
    sender: RecordSender, client: MqttClient, *, backoff: Backoff | None = None
) -> None:
    """Run `sender` on a connection of its own, reconnecting with backoff, until cancelled."""
    backoff = backoff or Backoff(0.2, 10.0)
    while True:
        try:
            async with client.connect() as link:
                backoff.reset()
                await link.subscribe(sender.ack_topic, qos=1)
                await _serve(sender, link)
        except BrokerRefused:
            raise
        except BrokerError as exc:
            log.warning("records to %s: %s", client.address, exc)
        await asyncio.sleep(backoff.delay())


async def _serve(sender: RecordSender, link: MqttLink) -> None:
    async def acks() -> None:
        async for message in link.messages():
            if message.topic == sender.ack_topic:
                sender.on_ack(message.payload)

    tasks = [asyncio.create_task(sender.run(link)), asyncio.create_task(acks())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a BrokerError ends this connection
        raise BrokerError("the connection closed")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
