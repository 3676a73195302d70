"""What a session reacts to, in arrival order: samples, events, lost links and user commands.

A deque and a wake-up flag rather than an `asyncio.Queue`: every telemetry sample passes
through here, and a queue's waiter bookkeeping costs more than the sample's checks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

Entry = tuple[int, int, Any]
"""(channel, generation, item): channel -1 is the user; generation tells old links apart."""


class SessionInbox:
    def __init__(self) -> None:
        self._entries: deque[Entry] = deque()
        self._wakeup = asyncio.Event()

    def put(self, entry: Entry) -> None:
        self._entries.append(entry)
        self._wakeup.set()

    def take(self) -> Entry | None:
        """The oldest entry, or None when empty."""
        return self._entries.popleft() if self._entries else None

    async def wait(self, timeout_s: float) -> bool:
        """Until something is in (True) or `timeout_s` passes (False)."""
        if self._entries:
            return True
        self._wakeup.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._wakeup.wait()
        except TimeoutError:
            return False
        return True

    def drain(self) -> list[Entry]:
        entries = list(self._entries)
        self._entries.clear()
        return entries
