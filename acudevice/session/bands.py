"""The bands of one session: leased from their keepers, read one hop from the wire.

Channel i is keeper i. The session holds each lease from start to end, across reconnects: a
reconnect hands the keeper a fresh `Device`, and the band is read through it from then on.
Leaving the leases (any way out) leaves the bands stopped; this class never connects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from acudevice.device import Device
from acudevice.device.keeper import Keeper
from acudevice.device.link import Sink
from acudevice.device.stopping import estop_all, wait_vented
from acudevice.plan.schedule import Schedule
from acudevice.protocol.messages import Event, Telemetry, TelemetryBatch
from acudevice.session.inbox import FromBand, LinkDown, SessionInbox


class SessionBands:
    def __init__(self, keepers: Sequence[Keeper], inbox: SessionInbox) -> None:
        self.keepers = list(keepers)
        self.devices: list[Device] = []
        self.generation = 0
        self._inbox = inbox
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def urls(self) -> list[str]:
        return [k.url for k in self.keepers]

    async def lease(self, leases: contextlib.AsyncExitStack, within_s: float) -> None:
        """Wait for every band (within `within_s`) and lease it until `leases` closes."""
        for keeper in self.keepers:
            await keeper.wait_ready(within_s)
            self.devices.append(await leases.enter_async_context(keeper.lease()))

    def _sink(self, channel: int, generation: int) -> Sink:
        put = self._inbox.put

        def sink(item: Telemetry | TelemetryBatch | Event | None) -> None:
            if item is None:
                put(LinkDown(channel, generation, "the link closed"))
            else:
                put(FromBand(channel, generation, item))

        return sink

    def listen(self) -> int:
        """Read every band's samples and events into the inbox, under a new generation (what
        arrives from a replaced link is told apart and dropped); the generation."""
        self.ignore()
        self.generation += 1
        self._unsubscribe = [
            d.subscribe(self._sink(i, self.generation)) for i, d in enumerate(self.devices)
        ]
        return self.generation

    def ignore(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    async def load_and_start(self, schedule: Schedule, cap_level: int) -> float | None:
        """SET_LIMITS, LOAD, START on every band; the start skew of a pair in ms.

        The plan was screened at its own cap and a band refuses to load it under a lower
        one, so a lowered `cap_level` (too strong, intensity) is set once it is loaded.
        """
        for device in self.devices:
            await device.set_limits(schedule.cap_level)
            await device.load(schedule)
            if cap_level < schedule.cap_level:
                await device.set_limits(cap_level)
        self.listen()
        started = await asyncio.gather(*(d.start() for d in self.devices))
        return (max(started) - min(started)) * 1000 if len(started) > 1 else None

    async def set_cap(self, cap_level: int) -> None:
        await asyncio.gather(*(d.set_limits(cap_level) for d in self.devices if d.connected))

    async def vent(self) -> None:
        await estop_all(self.devices)

    async def stop(self, *, but: int | None = None) -> None:
        """STOP every connected band (but one), each at once; errors are the vent's concern."""
        await asyncio.gather(
            *(d.stop() for i, d in enumerate(self.devices) if i != but and d.connected),
            return_exceptions=True,
        )

    async def wait_vented(self) -> bool:
        return await wait_vented(self.devices)

    async def reopen(self, channel: int, within_s: float) -> Device:
        """The band of `channel` on a fresh link (its keeper reconnects), within `within_s`."""
        keeper = self.keepers[channel]
        await keeper.drop("the session lost it")
        self.devices[channel] = await keeper.wait_ready(within_s)
        return self.devices[channel]
