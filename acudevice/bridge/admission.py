"""Which commands from the broker get to run, and in what order: a flood cannot back up a stop.

In front of `CommandDesk` (which decides what a command means):
- **stop** and **estop** run at once, each in its own task: no limit, no queue, nothing ahead
  of them (stopping is always allowed, from every interface);
- every other command passes two token buckets, one per band and one for the gateway, then
  waits in its band's lane (a short queue, one command at a time per band). A command over a
  limit, or finding its lane full, is refused and counted; the first refusal of a burst gets
  a reply (`refused`, saying why), the rest of the burst gets none, so that a flood does not
  become a flood of replies. The burst ends when a command of that band is let in again.

Replies go out in the bridge's urgent lane (acudevice/bridge/outgoing.py), never behind
telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass

from acudevice.bridge.payloads import BadCommand, CommandResult, parse_command

log = logging.getLogger("acudevice.bridge")

PER_BAND_PER_S = 10.0
PER_GATEWAY_PER_S = 500.0
BURST_S = 2.0
"""A bucket holds this many seconds of its rate: a short burst passes whole."""
LANE = 8
"""Commands of one band waiting for the one before them to finish."""
REPLIES_PER_S = 50.0
"""Refusal replies, all bands together: past it, refusals are only counted."""
_BYPASS = frozenset({"stop", "estop"})
_UNKNOWN = ""
"""The one lane (and bucket) shared by commands for bands this gateway does not have."""

Handle = Callable[[str, str, bytes, bool], Awaitable[object]]


class Bucket:
    """A token bucket: `rate` a second, at most `burst` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> bool:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass
class Limits:
    per_band_per_s: float = PER_BAND_PER_S
    per_gateway_per_s: float = PER_GATEWAY_PER_S
    burst_s: float = BURST_S
    lane: int = LANE


@dataclass
class GateCounters:
    admitted: int = 0
    bypassed: int = 0
    """stop and estop, run at once."""
    refused: int = 0
    """Over a limit or a full lane."""
    refusals_answered: int = 0


class CommandGate:
    def __init__(
        self,
        bands: Container[str],
        handle: Handle,
        reply: Callable[[CommandResult], None],
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bands = bands
        self.limits = limits or Limits()
        self.counters = GateCounters()
        self._handle = handle
        self._reply = reply
        self._clock = clock
        lim = self.limits
        self._gateway = Bucket(lim.per_gateway_per_s, lim.per_gateway_per_s * lim.burst_s)
        self._replies = Bucket(REPLIES_PER_S, REPLIES_PER_S * lim.burst_s)
        self._buckets: dict[str, Bucket] = {}
        self._lanes: dict[str, deque[tuple[str, str, bytes, bool]]] = {}
        self._answered: set[str] = set()
        """Bands whose current burst of refusals has had its one reply."""
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, band: str, verb: str, raw: bytes, *, retained: bool) -> None:
        """One command off the wire; never blocks, never raises."""
        if verb in _BYPASS:
            self.counters.bypassed += 1
            self._spawn(self._run_one(band, verb, raw, retained))
            return
        key = band if band in self.bands else _UNKNOWN
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            lim = self.limits
            bucket = self._buckets[key] = Bucket(
                lim.per_band_per_s, max(1.0, lim.per_band_per_s * lim.burst_s)
            )
        lane = self._lanes.get(key)
        if lane is not None and len(lane) >= self.limits.lane:
            self._refuse(key, band, verb, raw, "the band's queue")
            return
        if not bucket.take(now):
            self._refuse(key, band, verb, raw, "this band")
            return
        if not self._gateway.take(now):
            self._refuse(key, band, verb, raw, "this gateway")
            return
        self.counters.admitted += 1
        self._answered.discard(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            lane.append((band, verb, raw, retained))
            self._spawn(self._run_lane(key, lane))
        else:
            lane.append((band, verb, raw, retained))

    async def _run_lane(self, key: str, lane: deque[tuple[str, str, bytes, bool]]) -> None:
        """One command at a time for this band, until its lane is empty."""
        try:
            while lane:
                band, verb, raw, retained = lane[0]
                try:
                    await self._handle(band, verb, raw, retained)
                except Exception:  # a bug in one command must not stall the band's lane
                    log.exception("command %s for %s failed", verb, band)
                finally:
                    lane.popleft()
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _run_one(self, band: str, verb: str, raw: bytes, retained: bool) -> None:
        try:
            await self._handle(band, verb, raw, retained)
        except Exception:
            log.exception("command %s for %s failed", verb, band)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, key: str, band: str, verb: str, raw: bytes, which: str) -> None:
        self.counters.refused += 1
        if key in self._answered or not self._replies.take(self._clock()):
            return
        self._answered.add(key)
        self.counters.refusals_answered += 1
        lim = self.limits
        if which == "the band's queue":
            why = f"{lim.lane} commands for this band are already waiting"
        elif which == "this band":
            why = f"more than {lim.per_band_per_s:g} commands a second for this band"
        else:
            why = f"more than {lim.per_gateway_per_s:g} commands a second for this gateway"
        try:
            request_id = parse_command(verb, raw).request_id
        except BadCommand as bad:
            request_id = bad.request_id
        self._reply(
            CommandResult(
                request_id=request_id,
                band=band,
                command=verb,
                status="refused",
                reason=f"too many commands: {why}; further ones are refused without a reply "
                "until the rate drops (stop and estop always run)",
                ts=time.time(),
            )
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
