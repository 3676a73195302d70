"""What the gateway publishes, in two lanes, so that nothing urgent waits behind telemetry.

- **urgent**: replies, state, events, availability, discovery (and records). Never dropped
  here, handed to the client at once in the order they come. The client (paho) keeps each
  QoS 1 message until the broker's PUBACK, sends it again after a reconnect if none came,
  and keeps up to `INFLIGHT` of them in flight; `drain` waits for those acknowledgements.
  Nothing awaits one message before the next goes: on a busy event loop a few writers
  awaiting a PUBACK each let through only a few messages per turn of the loop.
- **telemetry**: QoS 0, handed to the client without waiting for anything. When the socket
  cannot take more (the broker or the network is not keeping up) and more than a window
  (256 KiB) of telemetry already waits in the client's own queue (paho's, in front of the
  socket), telemetry waits in a bounded buffer that drops the **oldest** and counts what it
  dropped. So when the broker or the network is slow, an urgent message has at most that
  window ahead of it in the client (plus what the kernel's socket buffer already holds), and
  the telemetry that does go out is the newest. While the socket can take more, telemetry is
  not held back (up to a hard limit, `CLIENT_MAX_BYTES`): a busy event loop lets the client
  write once per turn, and what one slow turn produces is no sign of a stalled broker.

While there is no connection, telemetry is dropped (never replayed later: it would be stale)
and urgent messages wait in a queue for the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from acudevice.bridge.mqtt import BrokerError, Handed, MqttLink

log = logging.getLogger("acudevice.bridge")

URGENT_QUEUE = 20_000
"""Urgent messages waiting for the broker to come back."""
TELEMETRY_BUFFER = 2_000
"""Telemetry messages waiting while the client's queue is full; the oldest go first."""
WINDOW_BYTES = 256 * 1024
"""Telemetry handed to the client and not yet written: past this, more goes only while the
socket can take it (a larger batch still goes, alone)."""
CLIENT_MAX_BYTES = 8 * 1024 * 1024
"""...and never more than this, writable or not."""
RETRY_S = 0.002
"""How soon a full window is looked at again (only while telemetry is waiting)."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str | bytes
    qos: int = 0
    retain: bool = False


@dataclass
class Counters:
    """What the lanes could not deliver, since the gateway started."""

    dropped_messages: int = 0
    """Telemetry messages dropped because the buffer was full (the oldest went)."""
    dropped_samples: int = 0
    """The samples those messages carried (a batch carries many)."""
    offline_messages: int = 0
    """Telemetry messages dropped because there was no connection."""
    urgent_lost: int = 0
    """Urgent messages lost: the queue was full, or the connection failed under them."""


class Outgoing:
    def __init__(
        self,
        *,
        buffer: int = TELEMETRY_BUFFER,
        window_bytes: int = WINDOW_BYTES,
        urgent_queue: int = URGENT_QUEUE,
    ) -> None:
        self.counters = Counters()
        self._window_bytes = window_bytes
        self._buffer: deque[tuple[Message, int]] = deque()
        self._buffer_max = buffer
        self._in_client: deque[tuple[Handed, int]] = deque()
        self._in_client_bytes = 0
        self._urgent: deque[Message] = deque()
        self._urgent_max = urgent_queue
        self._unconfirmed: deque[Handed] = deque()
        self._link: MqttLink | None = None
        self._retry: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- the connection

    def attach(self, link: MqttLink) -> None:
        """A connection is up: what waited for it goes now, then telemetry may follow."""
        self.detach()
        self._link = link
        waiting, self._urgent = self._urgent, deque()
        for message in waiting:
            self.urgent(message)

    def detach(self) -> None:
        """The connection is gone: telemetry waiting for it is stale and goes."""
        self._link = None
        self._unconfirmed.clear()  # the client sends them again on the next connection
        self.counters.offline_messages += len(self._buffer)
        self._buffer.clear()
        self._in_client.clear()
        self._in_client_bytes = 0
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    @property
    def connected(self) -> bool:
        return self._link is not None

    # ---------------------------------------------------------------- urgent lane

    def urgent(self, message: Message) -> None:
        """Replies, state, events, availability, discovery: never dropped for telemetry."""
        link = self._link
        if link is None:
            if len(self._urgent) >= self._urgent_max:
                self.counters.urgent_lost += 1
                log.warning("urgent queue full: lost a message for %s", message.topic)
                return
            self._urgent.append(message)
            return
        try:
            handed = link.publish_nowait(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
        except BrokerError:
            self.counters.urgent_lost += 1
            return
        if message.qos:
            unconfirmed = self._unconfirmed
            while unconfirmed and unconfirmed[0].is_published():
                unconfirmed.popleft()
            unconfirmed.append(handed)

    async def drain(self) -> None:
        """Until every urgent message so far is acknowledged (QoS 1); at once without a link."""
        link = self._link
        if link is None:
            return
        try:
            for handed in list(self._unconfirmed):
                await link.confirmed(handed)
        except BrokerError:
            return  # the connection ended: the client sends them on the next one

    # ---------------------------------------------------------------- telemetry lane

    def telemetry(self, topic: str, payload: str | bytes, *, samples: int = 1) -> None:
        """QoS 0, not retained; sent now if the client's queue has room, else buffered."""
        if self._link is None:
            self.counters.offline_messages += 1
            return
        message = Message(topic, payload)
        if not self._buffer and self._room():
            self._hand(message)
            return
        if len(self._buffer) >= self._buffer_max:
            _, lost = self._buffer.popleft()
            self.counters.dropped_messages += 1
            self.counters.dropped_samples += lost
        self._buffer.append((message, samples))
        self._schedule()

    @property
    def waiting(self) -> int:
        """Telemetry messages in the buffer now."""
        return len(self._buffer)

    def _room(self) -> bool:
        """Is there room in the client's queue for one more telemetry message?"""
        handed = self._in_client
        while handed and handed[0][0].is_published():
            self._in_client_bytes -= handed.popleft()[1]
        waiting = self._in_client_bytes
        if waiting < self._window_bytes:
            return True
        link = self._link
        return waiting < CLIENT_MAX_BYTES and link is not None and link.writable()

    def _hand(self, message: Message) -> None:
        assert self._link is not None
        try:
            handle = self._link.publish_nowait(message.topic, message.payload)
        except BrokerError:
            self.counters.offline_messages += 1
            return
        size = len(message.payload)
        self._in_client.append((handle, size))
        self._in_client_bytes += size

    def _schedule(self) -> None:
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(RETRY_S, self._pump)

    def _pump(self) -> None:
        self._retry = None
        if self._link is None:
            return
        while self._buffer and self._room():
            message, _ = self._buffer.popleft()
            self._hand(message)
        if self._buffer:
            self._schedule()
