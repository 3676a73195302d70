"""Acting on every band of a session at once: an emergency stop, and waiting for them to vent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from acudevice.device import Device, DeviceError
from acudevice.protocol import FirmwareState
from acudevice.safety.rules import EMERGENCY_VENT_WITHIN_S


async def estop_all(devices: Sequence[Device]) -> None:
    """ESTOP every connected band at once; one that fails to answer does not delay the rest."""

    async def one(device: Device) -> None:
        with contextlib.suppress(DeviceError):
            await device.estop()

    await asyncio.gather(*(one(d) for d in devices if d.connected))


async def wait_vented(devices: Sequence[Device]) -> None:
    """Until every connected band is idle or faulted (vented), for at most twice the vent time."""
    deadline = time.monotonic() + 2 * EMERGENCY_VENT_WITHIN_S
    while time.monotonic() < deadline:
        states = await asyncio.gather(*(d.status() for d in devices if d.connected))
        if all(s.state in (FirmwareState.IDLE, FirmwareState.FAULT) for s in states):
            return
        await asyncio.sleep(0.05)
