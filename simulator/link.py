"""Link impairment: the frame-level faults (drop, corrupt, duplicate, delay).

Faults act on serial frames (COBS + CRC-16 from `acudevice.protocol`), the way a noisy
cable or radio damages them, so a corrupted frame is caught by the receiver's CRC check and
dropped exactly as a real one would be. The in-process transport frames its payloads for
this reason; the PTY and TCP servers impair the bytes they read and write.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator.core.faults import FaultPlan


@dataclass(frozen=True)
class Delivery:
    delay_s: float
    data: bytes


class LinkImpairment:
    def __init__(self, plan: FaultPlan, *, seed: int | str, clock: Callable[[], float]) -> None:
        self.plan = plan
        self._rng = random.Random(f"link:{seed}")
        self._clock = clock
        self._connected_at = clock()
        self.dropped = 0
        self.corrupted = 0
        self.duplicated = 0

    @property
    def down(self) -> bool:
        after = self.plan.drop_after_ms
        return after is not None and (self._clock() - self._connected_at) * 1000 >= after

    def impair(self, frame: bytes) -> list[Delivery]:
        """What arrives at the far end for one frame sent now (possibly nothing)."""
        plan = self.plan
        if self.down:
            self.dropped += 1
            return []
        rng = self._rng
        if plan.corrupt and rng.random() < plan.corrupt and len(frame) > 1:
            damaged = bytearray(frame)
            at = rng.randrange(len(frame) - 1)  # the delimiter survives
            damaged[at] ^= rng.randrange(1, 256)
            frame = bytes(damaged)
            self.corrupted += 1
        copies = 1
        if plan.duplicate and rng.random() < plan.duplicate:
            copies = 2
            self.duplicated += 1
        return [Delivery(plan.delay_ms / 1000.0, frame)] * copies


class DelayLine:
    """Hands data to its sink `delay_s` after `put`, strictly in the order it was put."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[float, bytes, Callable[[bytes], None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self._task is not None

    def put(self, delay_s: float, data: bytes, sink: Callable[[bytes], None]) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run())
        self._queue.put_nowait((loop.time() + delay_s, data, sink))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data, sink = await self._queue.get()
            await asyncio.sleep(max(due - loop.time(), 0.0))
            sink(data)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
