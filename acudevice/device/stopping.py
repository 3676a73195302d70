"""Bringing bands to rest and waiting for the vent, on the loop's clock scaled by the band.

`Device.leave_stopped` is the one way a band is left stopped; this module acts on several
bands at once (a session's pair) and waits for them to finish venting. The wait runs on the
event loop's clock (virtual under looptime in tests) and allows each band its vent time in
*its* time: a simulator at speed 20 vents in a twentieth of the wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from acudevice.device.device import Device
from acudevice.device.errors import DeviceError
from acudevice.protocol import FirmwareState, Result, Stop
from acudevice.protocol.messages import StatusResponse
from acudevice.safety.rules import EMERGENCY_VENT_WITHIN_S

POLL_S = 0.05
SLACK_S = 5.0
"""Wall time allowed beyond the band's own vent time: link round trips and a busy host."""
_AT_REST = (FirmwareState.IDLE, FirmwareState.FAULT)
_MOVING = (FirmwareState.RUNNING, FirmwareState.PAUSED)


def wall_s(device: Device, device_s: float) -> float:
    """`device_s` of the band's time in wall seconds, plus slack (a band with no clock: slack)."""
    scale = device.info.time_scale
    return SLACK_S if scale == 0 else device_s / scale + SLACK_S


async def estop_all(devices: Sequence[Device]) -> None:
    """ESTOP every connected band at once; one that fails to answer does not delay the rest."""

    async def one(device: Device) -> None:
        with contextlib.suppress(DeviceError):
            await device.leave_stopped(vent=True)

    await asyncio.gather(*(one(d) for d in devices if d.connected))


async def wait_vented(devices: Sequence[Device]) -> bool:
    """Until every connected band is idle or faulted (vented): True, or False once twice its
    vent time has passed."""
    connected = [d for d in devices if d.connected]
    if not connected:
        return True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(wall_s(d, 2 * EMERGENCY_VENT_WITHIN_S) for d in connected)
    while loop.time() < deadline:
        states = await asyncio.gather(*(d.status() for d in connected if d.connected))
        if all(s.state in _AT_REST for s in states):
            return True
        await asyncio.sleep(POLL_S)
    return False


async def vent_and_clear(device: Device) -> tuple[StatusResponse, StatusResponse]:
    """ESTOP anything under way, wait until vented, and STOP to clear a latched fault.

    What `acudevice stop` does, and what the conformance suite does between its checks so
    that no check inherits another's state. Returns the status before and after; after is
    IDLE unless the fault cannot be cleared (a stuck pump or a failed vent needs service) or
    the vent outlasted its deadline.
    """
    before = await device.status()
    if before.state in _MOVING:
        await device.leave_stopped(vent=True)
    elif before.state is FirmwareState.LOADED:
        await device.leave_stopped()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wall_s(device, 2 * EMERGENCY_VENT_WITHIN_S)
    while True:
        status = await device.status()
        if status.state is FirmwareState.FAULT:
            cleared = await device.link.request(Stop(), deadline_s=2.0)
            if getattr(cleared, "result", None) == Result.OK:
                status = await device.status()
        if status.state is FirmwareState.IDLE or loop.time() > deadline:
            return before, status
        await asyncio.sleep(POLL_S)
