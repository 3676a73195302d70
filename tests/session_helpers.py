"""Running sessions against in-process simulated bands whose state tests can inspect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from acudevice.device import Device
from acudevice.plan.library import ProgramLibrary
from acudevice.session.model import SessionView
from acudevice.session.runner import Session
from acudevice.store import Journal
from simulator.loopback import SimTransport, Simulation
from simulator.options import SimOptions

NAUSEA = ProgramLibrary().get("nausea-relief")


@contextlib.asynccontextmanager
async def simulated(url: str) -> AsyncIterator[Simulation]:
    """A band that outlives any one connection, so a test can reconnect and look inside."""
    sim = Simulation(SimOptions.from_url(url))
    try:
        yield sim
    finally:
        await sim.stop()


def connector(sim: Simulation) -> Callable[[str], Device]:
    return lambda url: Device(SimTransport.to(sim))


class Watch:
    """Collects every view the session publishes and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.views: list[tuple[int, str, int, int]] = []
        self.notes: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, view: SessionView) -> None:
        ch = view.channels[0]
        self.views.append((view.elapsed_ms, view.phase, ch.measured_level, ch.target_level))
        self.notes = list(view.log)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within_s: float = 20.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def session(sim: Simulation, journal: Journal | None, watch: Watch, **kwargs: object) -> Session:
    return Session(
        NAUSEA,
        [sim.options.to_url()],
        journal=journal,
        on_update=watch,
        connect_fn=connector(sim),
        **kwargs,
    )  # type: ignore[arg-type]
