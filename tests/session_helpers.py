"""Running sessions against in-process simulated bands whose state tests can inspect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from acudevice.device import Device
from acudevice.device.keeper import ReconnectPolicy
from acudevice.plan.library import ProgramLibrary
from acudevice.session.runner import SESSION_RECONNECT, LinkPolicy, Session
from acudevice.session.view import SessionView
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
        self.view: SessionView | None = None
        self._changed = asyncio.Event()

    def follow(self, session: Session) -> Session:
        self.view = SessionView.follow(session, self)
        return session

    def __call__(self, view: SessionView) -> None:
        if view.channels:
            ch = view.channels[0]
            self.views.append((view.elapsed_ms, view.phase, ch.measured_level, ch.target_level))
        self.notes = list(view.log)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within_s: float = 20.0) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


def session(
    sim: Simulation,
    journal: Journal | None,
    watch: Watch,
    *,
    reconnect_attempts: int | None = None,
    link_losses_allowed: int | None = None,
    connect: Callable[[str], Device] | None = None,
    **kwargs: object,
) -> Session:
    """nausea-relief on `sim`, followed by `watch`; the budgets as the tests name them."""
    reconnect = SESSION_RECONNECT
    if reconnect_attempts is not None:
        reconnect = ReconnectPolicy(
            initial_s=0.5, maximum_s=4.0, first_attempts=1, attempts_per_loss=reconnect_attempts
        )
    link = (
        LinkPolicy()
        if link_losses_allowed is None
        else LinkPolicy(losses_allowed=link_losses_allowed)
    )
    return watch.follow(
        Session(
            NAUSEA,
            [sim.options.to_url()],
            journal=journal,
            connect=connect or connector(sim),
            reconnect=reconnect,
            link=link,
            **kwargs,  # type: ignore[arg-type]
        )
    )
