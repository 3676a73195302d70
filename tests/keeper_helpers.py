"""Watching a keeper's states and what a simulated band heard and did, on the loop's clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from acudevice.device import Device
from acudevice.device.keeper import Keeper, KeeperState
from acudevice.protocol import FirmwareState, Kind, decode
from acudevice.protocol.messages import FaultRaised, VentStarted
from acudevice.safety.compiler import compile_program
from acudevice.safety.limits import effective_limits
from simulator.link_bands import ServedBand, TransportKind, served_bands
from simulator.simulation import Simulation
from tests.session_helpers import NAUSEA

REAL_TIME_DEVICE: dict[str, Any] = {"request_timeout_s": 0.5, "heartbeat_interval_s": 0.25}
"""pty and TCP run on real time: shorter deadlines keep their tests quick (same contract)."""
LINKS = [
    pytest.param("sim", marks=[pytest.mark.sim, pytest.mark.looptime]),
    pytest.param("pty", marks=pytest.mark.wire),
    pytest.param("tcp", marks=pytest.mark.wire),
    pytest.param("ble", marks=[pytest.mark.wire, pytest.mark.looptime]),
]
"""Every transport; the virtual clock where the transport runs in-process."""


def real_time(link: TransportKind) -> bool:
    return link in ("pty", "tcp")


@contextlib.asynccontextmanager
async def bands_on(
    link: TransportKind, folder: Path, count: int = 1, url: str = "sim://?speed=20"
) -> AsyncIterator[list[ServedBand]]:
    options = REAL_TIME_DEVICE if real_time(link) else None
    async with served_bands(link, count, folder, url=url, device_options=options) as bands:
        yield bands


class States:
    """Every state a keeper reports, and a way to wait for one."""

    def __init__(self, keeper: Keeper) -> None:
        self.seen: list[KeeperState] = []
        self.whys: list[str | None] = []
        self._changed = asyncio.Event()
        keeper.subscribe(self)

    def __call__(self, state: KeeperState, why: str | None) -> None:
        self.seen.append(state)
        self.whys.append(why)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within_s: float = 15.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def after(self, index: int) -> list[KeeperState]:
        return self.seen[index:]


class Tap:
    """What the simulated band heard (requests) and did (vents, faults), with loop times."""

    def __init__(self, sim: Simulation) -> None:
        loop = asyncio.get_running_loop()
        self.requests: list[float] = []
        self.vents: list[tuple[float, VentStarted]] = []
        self.faults: list[tuple[float, FaultRaised]] = []
        self._changed = asyncio.Event()
        send = sim.clock.send

        def tapped(payload: bytes) -> None:
            if payload[1] == Kind.EVENT:
                message = decode(payload).message
                if isinstance(message, VentStarted):
                    self.vents.append((loop.time(), message))
                elif isinstance(message, FaultRaised):
                    self.faults.append((loop.time(), message))
                self._changed.set()
            send(payload)

        sim.clock.send = tapped
        sim.device.request_observer = lambda _payload: self.requests.append(loop.time())

    async def until(self, predicate: Callable[[], bool], within_s: float = 10.0) -> None:
        """Wait for the band to have said something that makes `predicate` true."""
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    @property
    def reasons(self) -> list[object]:
        return [vent.reason for _, vent in self.vents]

    def last_request_before(self, moment: float) -> float:
        return max(t for t in self.requests if t <= moment)


async def start_program(band: Device) -> None:
    """nausea-relief loaded and started: the band is RUNNING, rising to 12 kPa."""
    model = band.info.device_model
    schedule = compile_program(NAUSEA, effective_limits(model), model)
    await band.set_limits(schedule.cap_level)
    await band.load(schedule)
    await band.start()


async def until_state(
    band: Device, states: tuple[FirmwareState, ...], within_s: float = 10.0
) -> FirmwareState:
    """Ask the band until it is in one of `states` (polled, with a deadline)."""
    async with asyncio.timeout(within_s):
        while True:
            state = (await band.status()).state
            if state in states:
                return state
            await asyncio.sleep(0.05)
