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

At a numeric speed the clock runs in callbacks of one `_Hub` per event loop, which keeps a
single timer for every simulated device on it: a fleet of a thousand bands each waking ten
times a second would otherwise cost ten thousand timers, futures and task switches a second.
The hub wakes devices up to `HUB_SLACK_S` late so that neighbours share a wake-up; device time
is computed from the loop's clock, so a late step is the same step, only later.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import weakref
from collections import deque
from collections.abc import Callable
from typing import ClassVar

from simulator.core.device import SimDevice

log = logging.getLogger(__name__)

YIELD_EVERY_STEPS = 10
"""At speed=max, events between two `asyncio.sleep(0)` (about a second of device time)."""
MAX_LAG_S = 1.0
MAX_BATCH_STEPS = 200
"""At a numeric speed, steps run back to back before the loop gets a turn."""
_MIN_SLEEP_S = 0.001
HUB_SLACK_S = 0.002
"""How late the hub may wake a device, so that devices due close together share a wake-up."""
_AGAIN = -1.0
"""`_advance`: turn again at once (a request is waiting, or speed=max has work)."""
_YIELD = -2.0
"""`_advance`: let the loop run first (catching up on many steps), then turn again."""


class _Hub:
    """One timer for all the clocks of a loop: a heap of (wall time, wake-up number, clock)."""

    _of_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub]] = (
        weakref.WeakKeyDictionary()
    )
    """State of each loop, not of the process: a hub lives and goes with its loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._heap: list[tuple[float, int, Clock]] = []
        self._order = 0
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = float("inf")
        self.lag_told = False
        """A fleet says it cannot keep up once, not once per band."""

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Hub:
        hub = cls._of_loop.get(loop)
        if hub is None:
            hub = cls._of_loop[loop] = cls(loop)
        return hub

    def at(self, when: float, clock: Clock) -> int:
        """Turn `clock` at `when` (or a little later); the number that names this wake-up."""
        self._order += 1
        heapq.heappush(self._heap, (when, self._order, clock))
        if when < self._armed_for:
            self._arm(when)
        return self._order

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_for = when
        self._timer = self.loop.call_at(when + HUB_SLACK_S, self._fire)

    def _fire(self) -> None:
        self._timer, self._armed_for = None, float("inf")
        heap, now = self._heap, self.loop.time()
        due = []
        while heap and heap[0][0] <= now:
            due.append(heapq.heappop(heap))
        for _, number, clock in due:
            if clock.waiting_for == number:  # not a wake-up a request or a stop replaced
                clock.turn(now)
        if heap:
            self._arm(heap[0][0])


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
        self._done: asyncio.Future[None] | None = None
        """At a numeric speed: resolved when the clock stops, failed when a step fails."""
        self.waiting_for = 0
        """The hub wake-up this clock waits for (0: none, or a turn is already due)."""
        self._hub: _Hub | None = None
        self._turn_soon = False

    def deliver(self, payload: bytes) -> None:
        """A payload from the host; handled before the next step."""
        self._inbox.append(payload)
        self._wake_up()
        if self._done is not None:
            self._soon()

    def stop(self) -> None:
        self._stopped = True
        self._wake_up()
        self.waiting_for = 0
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

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
        if self.speed is not None:  # every step runs in the hub's (or a request's) callback
            self._done = loop.create_future()
            self._hub = _Hub.of(loop)
            self.turn()
            try:
                await self._done
            finally:
                self._stopped = True
                self.waiting_for = 0
            return
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

    def turn(self, wall: float | None = None) -> None:
        """One turn at a numeric speed: requests, the steps now due, then the next wake-up."""
        self._turn_soon = False
        self.waiting_for = 0
        done, hub = self._done, self._hub
        if self._stopped or done is None or done.done() or hub is None:
            return
        loop = hub.loop
        try:
            while True:
                wall = loop.time() if wall is None else wall
                if self._inbox or self.device.has_output:
                    self._serve_inbox(wall)
                nxt = self._advance(loop, wall)
                if self._stopped:
                    return
                if nxt == _AGAIN:
                    wall = None  # a request came with the last step's output: serve it now
                    continue
                if nxt == _YIELD:
                    self._soon()
                else:
                    self.waiting_for = hub.at(max(nxt, wall + _MIN_SLEEP_S), self)
                return
        except BaseException as exc:  # the task running `run` reports it
            done.set_exception(exc)

    def _soon(self) -> None:
        if not self._turn_soon and not self._stopped and self._hub is not None:
            self._turn_soon = True
            self.waiting_for = 0  # the hub's wake-up, if any, is no longer wanted
            self._hub.loop.call_soon(self.turn)

    async def _real_time(self, loop: asyncio.AbstractEventLoop) -> None:
        nxt = self._advance(loop, loop.time())
        if nxt == _AGAIN:
            return
        if nxt == _YIELD:
            await asyncio.sleep(0)  # catching up: let the host's tasks run
            return
        # A future and one timer, not `wait_for(event.wait())`: that costs a task and a
        # cancellation per sleep, and a fleet of idle bands sleeps ten times a second each.
        wake = self._wake = loop.create_future()
        timer = loop.call_at(max(nxt, loop.time() + _MIN_SLEEP_S), self._wake_up)
        try:
            await wake
        finally:
            timer.cancel()
            self._wake = None

    def _advance(self, loop: asyncio.AbstractEventLoop, wall: float) -> float:
        """Run the steps due by `wall` (now); the wall time of the next, or _AGAIN or _YIELD."""
        rate = (self.speed or 1) * 1000.0  # device ms per wall s
        due_ms = self._anchor_ms + (wall - self._anchor_wall) * rate
        if due_ms - self.device.now_ms > MAX_LAG_S * rate:
            hub = self._hub
            if not self._lagged and (hub is None or not hub.lag_told):
                log.warning(  # once per device, or once per loop for a fleet on a hub
                    "the CPU cannot keep up with speed=%s; running as fast as it can", self.speed
                )
                if hub is not None:
                    hub.lag_told = True
            self._lagged = True
            self._anchor(loop)
            due_ms = self.device.next_event_ms()
        steps = 0
        while self.device.next_event_ms() <= due_ms and not self._stopped:
            self._step(wall)
            steps += 1
            if self._inbox or (self.speed is None and self.device.busy):
                return _AGAIN
            if steps >= MAX_BATCH_STEPS:
                return _YIELD
        if self._inbox or self._stopped:
            return _AGAIN
        next_ms = self.device.next_event_ms()
        return self._anchor_wall + (next_ms - self._anchor_ms) / rate
