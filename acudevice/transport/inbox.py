"""Received payloads waiting for a reader: what every transport keeps between I/O and host."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from acudevice.transport.base import TransportClosed


class Inbox:
    """Bounded (a slow reader loses the oldest, counted), and ends with `TransportClosed`."""

    def __init__(self, maxlen: int) -> None:
        self._queue: deque[bytes] = deque(maxlen=maxlen)
        self._wakeup = asyncio.Event()
        self.closed_reason: str | None = None
        self.dropped = 0

    def put(self, payload: bytes) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(payload)
        self._wakeup.set()

    def close(self, reason: str) -> None:
        """Readers get what is queued, then `TransportClosed`; the first reason is kept."""
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wakeup.set()

    async def drain(self, url: str) -> AsyncIterator[bytes]:
        while True:
            if self._queue:
                yield self._queue.popleft()
                continue
            if self.closed_reason is not None:
                raise TransportClosed(f"{url}: {self.closed_reason}")
            self._wakeup.clear()
            await self._wakeup.wait()
