"""What a session reacts to, in arrival order: samples, events, lost links and user commands.

A deque and a wake-up flag rather than an `asyncio.Queue`: every telemetry sample passes
through here, and a queue's waiter bookkeeping costs more than the sample's checks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from acudevice.protocol.messages import Event, Telemetry, TelemetryBatch
from acudevice.session.model import Command


@dataclass(slots=True)
class FromBand:
    """A sample, batch or event off band `channel`'s link of `generation`."""

    channel: int
    generation: int
    item: Telemetry | TelemetryBatch | Event


@dataclass(slots=True)
class LinkDown:
    """Band `channel`'s link of `generation` is gone (or has been silent too long)."""

    channel: int
    generation: int
    why: str


@dataclass(slots=True)
class UserCommand:
    command: Command
    reason: str
    """Why, in the journal's words: "by the user", "at the remote session limit", ..."""


@dataclass(slots=True)
class IntensityRequest:
    """Lower the cap to `percent` of full intensity; the answer is None or the refusal."""

    percent: int
    answer: asyncio.Future[str | None]

    def answer_once(self, refusal: str | None) -> None:
        if not self.answer.done():
            self.answer.set_result(refusal)


Entry = FromBand | LinkDown | UserCommand | IntensityRequest


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
