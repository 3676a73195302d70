"""The in-process `sim://` transport: a simulated device in the host's own event loop.

`SimTransport(url)` implements `acudevice.transport.base.Transport` and is what the
`sim` entry point of the `acudevice.transports` group names. Payloads cross as bytes, and
the firmware decodes and encodes them with the protocol codec. With a link fault
configured each payload is framed with COBS + CRC-16 and deframed on the far side (so the
fault hits frames the way it hits a cable); without one, framing could only ever succeed,
so payloads are handed over as they are.

`SimTransport.to(simulation)` opens another link to an existing simulated device, which is how a
test reconnects after a link drop or a watchdog vent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from acudevice.errors import AcuDeviceError
from acudevice.protocol import MAX_PAYLOAD, Deframer, frame
from acudevice.transport.base import TransportClosed, TransportError
from acudevice.transport.inbox import Inbox
from simulator.core.device import SimDevice
from simulator.link import DelayLine, LinkImpairment
from simulator.options import SimOptions
from simulator.simulation import Simulation

__all__ = ["SimTransport", "Simulation"]

INBOX_PAYLOADS = 4096
"""Payloads waiting for the host, as on the wire transports: a reader that falls this far
behind loses the oldest (counted in `Inbox.dropped`)."""


class _Direction:
    """One way of the link: impair frames, deliver them in order, deframe at the far end."""

    def __init__(self, link: LinkImpairment, sink: Callable[[bytes], None]) -> None:
        self.link = link
        self.sink = sink
        self.deframer = Deframer()
        self._late = DelayLine()
        self.framed = link.plan.link_faults

    def send(self, payload: bytes) -> None:
        if not self.framed:
            self.sink(payload)
            return
        for delivery in self.link.impair(frame(payload)):
            if delivery.delay_s > 0 or self._late.active:
                self._late.put(delivery.delay_s, delivery.data, self._arrive)
            else:
                self._arrive(delivery.data)

    def _arrive(self, data: bytes) -> None:
        for payload in self.deframer.feed(data):
            self.sink(payload)

    def close(self) -> None:
        self._late.close()


class SimTransport:
    """`sim://?model=...&seed=...&speed=...&fault=...` as an acudevice transport."""

    def __init__(self, url: str, *, simulation: Simulation | None = None) -> None:
        """Built from the URL (a private simulated device), or on an existing `Simulation`."""
        self.url = url
        try:
            options = simulation.options if simulation else SimOptions.from_url(url)
        except AcuDeviceError as exc:
            raise TransportError(f"device URL {url!r}: {exc}") from None
        self.options = options
        self._simulation = simulation
        self._owns_simulation = simulation is None
        self._inbound = Inbox(INBOX_PAYLOADS)
        self._up: _Direction | None = None
        self._down: _Direction | None = None
        self._state = "new"
        self._why_closed = "the link is closed"

    @classmethod
    def to(cls, simulation: Simulation) -> SimTransport:
        """A new link to an existing simulated device (it replaces the previous link)."""
        return cls(simulation.options.to_url(), simulation=simulation)

    @property
    def mtu(self) -> int:
        return MAX_PAYLOAD

    @property
    def simulation(self) -> Simulation:
        if self._simulation is None:
            raise TransportError(f"{self.url}: not connected")
        return self._simulation

    @property
    def device(self) -> SimDevice:
        """The simulated device behind this link (for tests and tools)."""
        return self.simulation.device

    @property
    def frames_rejected(self) -> tuple[int, int]:
        """Frames the CRC threw away so far: (host to device, device to host)."""
        up, down = self._up, self._down
        return (
            up.deframer.error_count if up is not None else 0,
            down.deframer.error_count if down is not None else 0,
        )

    async def connect(self) -> None:
        if self._state != "new":
            raise TransportError(f"{self.url}: a transport connects once; make a new one")
        if self._simulation is None:
            try:
                self._simulation = Simulation(self.options)
            except AcuDeviceError as exc:
                raise TransportError(f"device URL {self.url!r}: {exc}") from None
        sim = self._simulation
        loop = asyncio.get_running_loop()
        link = LinkImpairment(self.options.faults, seed=self.options.seed, clock=loop.time)
        self._up = _Direction(link, sim.from_host)
        self._down = _Direction(link, self._inbound.put)
        self._state = "open"
        sim.attach(self)
        sim.start()

    def from_device(self, payload: bytes) -> None:
        if self._state == "open" and self._down is not None:
            self._down.send(payload)

    def lose(self, why: str) -> None:
        """The link is gone from the device side; readers get `TransportClosed`."""
        if self._state == "open":
            self._state = "closed"
            self._why_closed = why
            self._inbound.close(why)

    async def close(self) -> None:
        if self._state == "closed" and self._up is None:
            return
        was_open = self._state == "open"
        self._state = "closed"
        for direction in (self._up, self._down):
            if direction is not None:
                direction.close()
        self._up = self._down = None
        if was_open:
            self._inbound.close(self._why_closed)
        sim = self._simulation
        if sim is not None:
            sim.detach(self)
            if self._owns_simulation:
                with contextlib.suppress(Exception):
                    await sim.stop()

    async def send(self, payload: bytes) -> None:
        if self._state != "open" or self._up is None:
            raise TransportClosed(f"{self.url}: {self._why_closed}")
        if not 0 < len(payload) <= MAX_PAYLOAD:
            raise TransportError(f"{self.url}: payload of {len(payload)} bytes (1..{MAX_PAYLOAD})")
        self._up.send(payload)

    async def payloads(self) -> AsyncIterator[bytes]:
        if self._state == "new":
            raise TransportClosed(f"{self.url}: {self._why_closed}")
        async for payload in self._inbound.drain(self.url):
            yield payload
