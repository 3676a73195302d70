"""Simulated bands served on a real transport, and cut from the band's side.

    async with served_bands("tcp", 2, folder) as bands:
        keeper = Keeper(bands[0].url, connect=bands[0].connect)
        ...
        await bands[0].drop()                # the band side drops the link; back at once

One `ServedBand` is a `Simulation` behind the transport a host reaches it by: in-process
(`sim`), a pseudo-terminal through pyserial (`pty`, behind a stable symlink as udev names a USB
adapter), TCP on loopback (`tcp`), or the Bumble virtual radio through bleak (`ble`, bonded
first, as `acudevice pair` does). Every kind can `drop()` the link, stay `away(for_s)` (the link
dropped and connects failing meanwhile) or go silent (`silence(for_s)`: nothing either way
while both ends still believe in the link); each kind also has the failures of its own medium
(a pty hang-up, a TCP reset, a GATT write never answered). The keeper tests and the link
campaign (`simulator.link_campaign`) both drive bands through this; it is a front end of the
simulator and may import the host library.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal

from acudevice.device import Device, connect
from acudevice.transport import TransportError
from simulator.loopback import SimTransport
from simulator.options import SimOptions
from simulator.server import PtyServer, TcpServer
from simulator.simulation import Simulation

TransportKind = Literal["sim", "pty", "tcp", "ble"]
TRANSPORTS: tuple[TransportKind, ...] = ("sim", "pty", "tcp", "ble")
_radio_names = itertools.count()


class ServedBand:
    """One simulated band on one transport; see the module docstring."""

    kind: TransportKind = "sim"

    def __init__(self, options: SimOptions, device_options: dict[str, Any] | None = None) -> None:
        self.sim = Simulation(options)
        self.url = options.to_url()
        self.device_options = device_options or {}
        """Passed to every `Device` (shorter timeouts for a test on real time, say)."""
        self._away_until = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.sim.start()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self.sim.stop()

    def connect(self, url: str) -> Device:
        """What a keeper calls to open this band (`Keeper(url, connect=band.connect)`)."""
        return connect(url, **self.device_options)

    def _later(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def away(self) -> bool:
        return asyncio.get_running_loop().time() < self._away_until

    async def drop(self) -> None:
        """The band's side ends the link; the band can be reached again at once."""
        await self.go_away(0.0)

    async def go_away(self, for_s: float) -> None:
        """The band's side ends the link and cannot be reached for `for_s` seconds."""
        self._away_until = asyncio.get_running_loop().time() + for_s
        link = self.sim.link
        if link is not None:
            link.lose("the band dropped the link")

    def silence(self, for_s: float) -> None:
        """Nothing crosses the link either way for `for_s` seconds; nobody is told."""
        self.sim.silence(for_s)


class _OutOfReach(SimTransport):
    async def connect(self) -> None:
        raise TransportError(f"{self.url}: the band does not answer (out of reach)")


class SimBand(ServedBand):
    kind: TransportKind = "sim"

    def connect(self, url: str) -> Device:
        transport = (_OutOfReach if self.away else SimTransport).to(self.sim)
        return Device(transport, **self.device_options)


class PtyBand(ServedBand):
    """A USB serial band: `hang_up` is the adapter unplugged (or reset) and plugged back."""

    kind: TransportKind = "pty"

    def __init__(
        self, options: SimOptions, folder: Path, device_options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(options, device_options)
        link = folder / f"usb-acudevice-sim-{options.seed}-if00"
        self.server = PtyServer(self.sim, link_path=link)
        self.url = f"serial://{link}"

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await super().close()
        await self.server.close()

    async def go_away(self, for_s: float) -> None:
        self.server.hang_up(for_s)


class TcpBand(ServedBand):
    """A band behind a serial-to-TCP bridge: resets, and a bridge that refuses for a while."""

    kind: TransportKind = "tcp"

    def __init__(self, options: SimOptions, device_options: dict[str, Any] | None = None) -> None:
        super().__init__(options, device_options)
        self.server = TcpServer(self.sim)

    async def start(self) -> None:
        self.url = f"tcp://127.0.0.1:{await self.server.start()}"

    async def close(self) -> None:
        await super().close()
        await self.server.close()

    async def drop(self) -> None:
        self.server.reset()

    async def go_away(self, for_s: float) -> None:
        self.server.reset()
        self._later(self.server.refuse(for_s))


class BleAir:
    """The virtual radio the bands advertise on, and this host's controller on it."""

    def __init__(self) -> None:
        from acudevice.ble import radios
        from simulator.ble_radio import VirtualRadio

        self.radio = VirtualRadio()
        self._name = f"served-bands-{next(_radio_names)}"
        self.hci = radios.register_local(self._name, self.radio.controller("host"))

    def close(self) -> None:
        from acudevice.ble import radios

        radios.unregister_local(self._name)


class BleServedBand(ServedBand):
    """A band on the Bumble virtual radio, bonded with this host when it starts."""

    kind: TransportKind = "ble"

    def __init__(
        self, options: SimOptions, air: BleAir, device_options: dict[str, Any] | None = None
    ) -> None:
        from simulator.ble_band import BleBand

        super().__init__(options, device_options)
        self.air = air
        self.band = BleBand(self.sim, air.radio.controller(f"band-{options.seed}"))
        # One attempt per connect, a second long: the keeper's backoff does the retrying.
        self.url = f"ble://{self.band.address}?hci={air.hci}&timeout_s=1&attempts=1"

    async def start(self) -> None:
        from acudevice.device import pairing

        await self.band.start()
        await pairing.pair(self.band.address, passkey=self.band.passkeys.get, hci=self.air.hci)

    async def close(self) -> None:
        await super().close()
        await self.band.stop()

    async def drop(self) -> None:
        """A supervision timeout: the link is gone, and the band advertises again at once."""
        await self.band.disconnect()

    async def go_away(self, for_s: float) -> None:
        """Out of range: the link is gone and connects time out until it advertises again."""
        await self.band.drop_link(for_s)

    def swallow_next_write(self) -> None:
        self.band.swallow_next_write()


@contextlib.asynccontextmanager
async def served_bands(
    kind: TransportKind,
    count: int,
    folder: Path,
    *,
    url: str = "sim://?speed=20",
    device_options: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
) -> AsyncIterator[list[ServedBand]]:
    """`count` bands (options from `url`, seed i each unless `seeds`), started, then closed.

    `folder` holds what the bands need on disk (the pty symlinks); BLE bonds and paired bands
    go wherever `ACUDEVICE_HOME` says, as for `acudevice pair`.
    """
    base = SimOptions.from_url(url)
    air = BleAir() if kind == "ble" else None
    bands: list[ServedBand] = []
    for i, seed in enumerate(seeds if seeds is not None else range(count)):
        if i >= count:
            break
        options = dataclasses.replace(base, seed=seed)
        if kind == "pty":
            bands.append(PtyBand(options, folder, device_options))
        elif kind == "tcp":
            bands.append(TcpBand(options, device_options))
        elif kind == "ble":
            assert air is not None
            bands.append(BleServedBand(options, air, device_options))
        else:
            bands.append(SimBand(options, device_options))
    started: list[ServedBand] = []
    try:
        for band in bands:
            await band.start()
            started.append(band)
        yield bands
    finally:
        for band in reversed(started):
            with contextlib.suppress(Exception):
                await band.close()
        if air is not None:
            air.close()
