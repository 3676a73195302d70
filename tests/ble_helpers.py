"""A simulated band and a host radio on one in-process Bumble virtual radio."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bleak import BleakClient
from bumble import data_types, hci
from bumble.core import AdvertisingData
from bumble.device import Device
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from acudevice.ble import BumbleClient, radios
from acudevice.device import pairing
from acudevice.plan.library import ProgramLibrary
from acudevice.session.runner import Session
from acudevice.session.view import SessionView
from acudevice.store.paired import PairedDevice
from acudevice.transport.ble import radio_config
from simulator.ble_band import BleBand
from simulator.ble_radio import VirtualRadio
from simulator.options import SimOptions
from simulator.simulation import Simulation

_names = itertools.count()
NAUSEA = ProgramLibrary().get("nausea-relief")
PASSKEY_WAIT_S = 5.0


@dataclass
class Rig:
    radio: VirtualRadio
    band: BleBand
    hci: str

    @property
    def sim(self) -> Simulation:
        return self.band.simulation

    def url(self, **options: object) -> str:
        query = "&".join([f"hci={self.hci}", *(f"{k}={v}" for k, v in options.items())])
        return f"ble://{self.band.address}?{query}"

    async def shown_passkey(self) -> int | None:
        """Play the user: read the passkey off the band's display."""
        async with asyncio.timeout(PASSKEY_WAIT_S):
            return await self.band.passkeys.get()

    async def wrong_passkey(self) -> int | None:
        shown = await self.shown_passkey()
        assert shown is not None
        return (shown + 1) % 1_000_000

    async def pair(self, alias: str | None = "left-wrist") -> PairedDevice:
        return await pairing.pair(
            self.band.address, passkey=self.shown_passkey, alias=alias, hci=self.hci
        )


@contextlib.asynccontextmanager
async def ble_rig(sim_url: str = "sim://?speed=max&seed=7") -> AsyncIterator[Rig]:
    radio = VirtualRadio()
    band = BleBand(Simulation(SimOptions.from_url(sim_url)), radio.controller("band"))
    name = f"test-{next(_names)}"
    hci_spec = radios.register_local(name, radio.controller("host"))
    await band.start()
    try:
        yield Rig(radio, band, hci_spec)
    finally:
        await band.stop()
        radios.unregister_local(name)


@contextlib.asynccontextmanager
async def other_advertiser(radio: VirtualRadio, name: str) -> AsyncIterator[Device]:
    """Some other product advertising nearby: a name and no acudevice service."""
    controller = radio.controller("neighbour")
    address = hci.Address("C1:00:00:00:00:99", hci.Address.RANDOM_DEVICE_ADDRESS)
    device = Device(name=name, address=address, host=Host(controller, AsyncPipeSink(controller)))
    await device.power_on()
    data = bytes(AdvertisingData([data_types.CompleteLocalName(name)]))
    await device.start_advertising(
        advertising_data=data, advertising_interval_min=20, advertising_interval_max=20
    )
    try:
        yield device
    finally:
        await device.stop_advertising()


@dataclass
class Progress:
    """Records what a session publishes; `until` waits for a condition on it."""

    phases: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def follow(self, session: Session) -> Session:
        SessionView.follow(session, self)
        return session

    def __call__(self, view: SessionView) -> None:
        self.phases.append(view.phase)
        self.notes = list(view.log)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], within_s: float) -> None:
        async with asyncio.timeout(within_s):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def raw_client(rig: Rig, **kwargs: object) -> AsyncIterator[BleakClient]:
    """bleak's own client on our backend, connected to the band (no acudevice transport)."""
    async with radios.use(rig.hci, radio_config()) as radio:
        client = BleakClient(
            rig.band.address, backend=BumbleClient, radio=radio, timeout=3, **kwargs
        )
        async with client:
            yield client


def bonds_in(keystore: str | Path, identity: str) -> dict[str, dict[str, object]]:
    """The peers a Bumble JSON key store holds keys for, under one identity."""
    data: dict[str, dict[str, dict[str, object]]] = json.loads(Path(keystore).read_text())
    return data.get(identity, {})
