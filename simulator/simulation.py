"""A simulated device running on the current event loop, with one link to a host at a time.

A link is anything with `from_device(payload)` and `lose(why)`: the in-process transport
(`simulator.loopback`), a byte-stream server (`simulator.server`) or the BLE band
(`simulator.ble_band`); each hands what the host sent to `from_host`. A new link replaces the
previous one and counts as a new connection for the firmware (HELLO and SET_LIMITS again).
`silence(for_s)` makes whatever link there is carry nothing either way for a while, as a
hung radio or USB bridge does while both ends still believe in the link.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from simulator.clock import Clock
from simulator.core.device import SimDevice, VentReport
from simulator.core.models import SimModel
from simulator.options import SimOptions

log = logging.getLogger(__name__)
_NEVER = float("-inf")


class DeviceLink(Protocol):
    def from_device(self, payload: bytes) -> None: ...

    def lose(self, why: str) -> None: ...


class Simulation:
    def __init__(self, options: SimOptions | None = None, *, model: SimModel | None = None) -> None:
        """`model` replaces the named model: a variant no profile ships (tests, what-ifs)."""
        self.options = options or SimOptions()
        opts = self.options
        self.device = SimDevice(
            model or opts.model,
            seed=opts.seed,
            faults=opts.faults,
            battery=opts.battery,
            time_scale=opts.time_scale,
            telemetry_factor=opts.telemetry_factor,
            uptime_ms=opts.uptime_ms,
        )
        self.clock = Clock(self.device, speed=opts.speed, send=self._to_host)
        self._task: asyncio.Task[None] | None = None
        self._link: DeviceLink | None = None
        self._silent_until = _NEVER

    @property
    def link(self) -> DeviceLink | None:
        return self._link

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.clock.run())
            self._task.add_done_callback(self._clock_ended)

    def _clock_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator clock crashed", exc_info=task.exception())
            if self._link is not None:
                self._link.lose("the simulated device crashed")

    async def stop(self) -> None:
        """Stop the clock (the device freezes where it is) and drop the link.

        Waits for the clock's task with `asyncio.wait`, which never raises its outcome: a
        `suppress(CancelledError)` around `await task` would also eat a cancel aimed at the
        caller (acudevice/device/link.py `reap` does the same). The link is dropped even then.
        """
        self.clock.stop()
        task, self._task = self._task, None
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
        finally:
            link, self._link = self._link, None
            if link is not None:
                link.lose("the simulator stopped")

    def vent_for_shutdown(self) -> VentReport:
        """Vent (as ESTOP) and run device time until released; call before `stop`."""
        wall = asyncio.get_running_loop().time()
        report = self.device.power_off_vent(wall)
        for payload in self.device.take_output():
            self._to_host(payload)
        return report

    def attach(self, link: DeviceLink | None) -> None:
        if self._link is not None and self._link is not link:
            self._link.lose("another link connected to the simulated device")
        self._link = link
        if link is not None:
            self.device.firmware.link_reset()

    def detach(self, link: DeviceLink) -> None:
        if self._link is link:
            self._link = None

    def silence(self, for_s: float) -> None:
        """Nothing crosses any link, either way, for `for_s` seconds of the loop's clock (the
        firmware neither hears the host, so its watchdog runs, nor is heard)."""
        self._silent_until = asyncio.get_running_loop().time() + for_s

    @property
    def silent(self) -> bool:
        until = self._silent_until
        return until > _NEVER and asyncio.get_running_loop().time() < until

    def from_host(self, payload: bytes) -> None:
        """A payload the host sent, as it reaches the firmware (unless the line is silent)."""
        if not self.silent:
            self.clock.deliver(payload)

    def _to_host(self, payload: bytes) -> None:
        if self._link is not None and not self.silent:
            self._link.from_device(payload)
