"""The clock that drives a `SimDevice` from an asyncio loop.

- `speed=N`: device time runs N times as fast as the loop's clock. The clock sleeps until
  the device's next event is due and catches up if the loop was late (without spiralling:
  if it falls more than a second behind it drops the backlog and re-anchors). A request is
  handled at the device time of the last event, and the firmware acts on it at once, so an
  ESTOP vents without waiting for the next event.
- `speed=max` (`None`): while the device is busy (RUNNING, VENTING, a fault vent) steps run
  back to back, yielding to the loop (`asyncio.sleep(0)`) every few steps so the host's
  tasks keep up; while it is quiescent (IDLE, LOADED, PAUSED, vented FAULT) device time runs
  at real-time speed, so an idle simulator neither spins a CPU core nor lives through days
  of battery drain between two host requests.

Requests are handled between steps, in arrival order; responses go out at once, then the
events and telemetry of each step. The watchdog is fed the loop's clock (`loop.time()`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from simulator.device import SimDevice

log = logging.getLogger(__name__)

YIELD_EVERY_STEPS = 10
"""At speed=max, events between two `asyncio.sleep(0)` (about a second of device time)."""
MAX_LAG_S = 1.0
MAX_BATCH_STEPS = 200
"""At a numeric speed, steps run back to back before the loop gets a turn."""
_MIN_SLEEP_S = 0.001


class Clock:
    def __init__(
        self, device: SimDevice, *, speed: int | None, send: Callable[[bytes], None]
    ) -> None:
        self.device = device
        self.speed = speed
        self.send = send
        self._inbox: deque[bytes] = deque()
        self._wake: asyncio.Future[None] | None = None
        """What the clock sleeps on: set by a request, a stop, or its own timer."""
        self._stopped = False
        self._anchor_wall = 0.0
        self._anchor_ms = 0
        self._lagged = False

    def deliver(self, payload: bytes) -> None:
        """A payload from the host; handled before the next step."""
        self._inbox.append(payload)
        self._wake_up()

    def stop(self) -> None:
        self._stopped = True
        self._wake_up()

    def _wake_up(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _anchor(self, loop: asyncio.AbstractEventLoop) -> None:
        self._anchor_wall = loop.time()
        self._anchor_ms = self.device.now_ms

    def _serve_inbox(self, wall: float) -> None:
        device = self.device
        while self._inbox:
            response = device.handle(self._inbox.popleft(), wall)
            if response is not None:
                self.send(response)
        for payload in device.take_output():
            self.send(payload)

    def _step(self, wall: float, until_ms: int | None = None) -> None:
        device = self.device
        device.step(wall, until_ms)
        if device.has_output:
            for payload in device.take_output():
                self.send(payload)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._anchor(loop)
        fast = False
        while not self._stopped:
            wall = loop.time()
            self._serve_inbox(wall)
            if self.speed is None and self.device.busy:
                fast = True
                for payload in self.device.run(wall, YIELD_EVERY_STEPS):
                    self.send(payload)
                await asyncio.sleep(0)
                continue
            if fast:  # back from flat out: real time resumes from here
                fast = False
                self._anchor(loop)
            await self._real_time(loop)

    async def _real_time(self, loop: asyncio.AbstractEventLoop) -> None:
        rate = (self.speed or 1) * 1000.0  # device ms per wall s
        due_ms = self._anchor_ms + (loop.time() - self._anchor_wall) * rate
        if due_ms - self.device.now_ms > MAX_LAG_S * rate:
            if not self._lagged:
                log.warning(
                    "the CPU cannot keep up with speed=%s; running as fast as it can", self.speed
                )
                self._lagged = True
            self._anchor(loop)
            due_ms = self.device.next_event_ms()
        steps = 0
        while self.device.next_event_ms() <= due_ms and not self._stopped:
            self._step(loop.time())
            steps += 1
            if self._inbox or (self.speed is None and self.device.busy):
                return
            if steps >= MAX_BATCH_STEPS:
                await asyncio.sleep(0)  # catching up: let the host's tasks run
                return
        next_ms = self.device.next_event_ms()
        next_wall = self._anchor_wall + (next_ms - self._anchor_ms) / rate
        if self._inbox or self._stopped:
            return
        # A future and one timer, not `wait_for(event.wait())`: that costs a task and a
        # cancellation per sleep, and a fleet of idle bands sleeps ten times a second each.
        wake = self._wake = loop.create_future()
        timer = loop.call_at(max(next_wall, loop.time() + _MIN_SLEEP_S), self._wake_up)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None
