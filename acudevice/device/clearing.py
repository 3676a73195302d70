"""Bringing a band to rest: vent it, wait for the vent, clear a latched fault.

What `acudevice stop` does, and what the conformance suite does between its checks so that
no check inherits another's state and the band is left as it was found.
"""

from __future__ import annotations

import asyncio

from acudevice.device.device import Device
from acudevice.protocol import FirmwareState, Result, Stop
from acudevice.protocol.messages import StatusResponse
from acudevice.safety.rules import EMERGENCY_VENT_WITHIN_S

POLL_S = 0.05
_MOVING = (FirmwareState.RUNNING, FirmwareState.PAUSED)


def _wall_s(device: Device, device_s: float) -> float:
    scale = device.info.time_scale
    return 5.0 if scale == 0 else device_s / scale + 5.0


async def vent_and_clear(device: Device) -> tuple[StatusResponse, StatusResponse]:
    """ESTOP anything under way, wait until vented, and STOP to clear a latched fault.

    Returns the status before and after; after is IDLE unless the fault cannot be cleared
    (a stuck pump or a failed vent needs service) or the vent outlasted its deadline.
    """
    before = await device.status()
    if before.state in _MOVING:
        await device.estop()
    elif before.state is FirmwareState.LOADED:
        await device.link.request(Stop(), deadline_s=2.0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _wall_s(device, 2 * EMERGENCY_VENT_WITHIN_S)
    while True:
        status = await device.status()
        if status.state is FirmwareState.FAULT:
            cleared = await device.link.request(Stop(), deadline_s=2.0)
            if getattr(cleared, "result", None) == Result.OK:
                status = await device.status()
        if status.state is FirmwareState.IDLE or loop.time() > deadline:
            return before, status
        await asyncio.sleep(POLL_S)
