"""A band connection the bridge keeps open and lends to one session at a time.

A `Session` opens and closes its devices; on a gateway the link (and its heartbeat) must
outlive every session, so that a band is never left without its host between sessions or
while the broker is away. Opening a lent device is a no-op; closing it only leaves the band
stopped (or vented) and keeps the link.
"""

from __future__ import annotations

import asyncio
import contextlib

from acudevice.device import Device
from acudevice.protocol import FirmwareState
from acudevice.transport import Transport

_ACTIVE = (FirmwareState.RUNNING, FirmwareState.PAUSED, FirmwareState.LOADED)


class GatewayDevice(Device):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self._opened = False
        self.lent = False
        self.started = asyncio.Event()

    async def open(self) -> None:
        if self._opened:
            return
        await super().open()
        self._opened = True

    async def start(self) -> float:
        accepted = await super().start()
        self.started.set()
        return accepted

    async def close(self, *, vent: bool = False) -> None:
        if self.lent and self.connected:
            with contextlib.suppress(Exception):
                if vent:
                    await self.estop()
                elif (await self.status()).state in _ACTIVE:
                    await self.stop()
            return
        await super().close(vent=vent)

    async def shutdown(self, *, vent: bool = False) -> None:
        """Close for real: the bridge is leaving."""
        self.lent = False
        await super().close(vent=vent)
