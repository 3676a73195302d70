"""The simulated band as a BLE peripheral: a Bumble device in front of a `Simulation`.

The firmware model is the one every other transport drives (`simulator.simulation`): a BLE
connection is one more `DeviceLink`. Control writes are reassembled (BLE segmentation,
`acudevice.protocol.segmentation`) and handed to the simulation's clock; its responses,
events and telemetry go back as notifications on `events`, segmented to the link's ATT MTU.

Security, checked here because Bumble's virtual stack does not: a control write is obeyed
only on a link encrypted with a key from passkey pairing (MITM). Bumble marks every paired
or encrypted link "authenticated", even a Just Works one, so the band looks at the key's own
`authenticated` flag. Anything else gets ATT error 0x05 (Insufficient Authentication),
except STOP and ESTOP, which every link may send (docs/protocol.md section 9, rule 6). A
write-without-response on `control` is ignored: the characteristic only takes writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from bumble import att, gatt, hci, pairing
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Connection, Device
from bumble.host import Host
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore, PairingKeys
from bumble.transport.common import AsyncPipeSink

from acudevice.protocol import BLE_EVENTS_UUID, BLE_SERVICE_UUID, Kind, Opcode
from acudevice.protocol.segmentation import SEGMENT, Reassembler, Segmenter
from simulator.ble_gatt import BandGatt, advertising_data, band_name
from simulator.simulation import Simulation

log = logging.getLogger(__name__)

ADVERTISING_INTERVAL_MS = 20.0
_ALWAYS_OBEYED = frozenset({Opcode.STOP, Opcode.ESTOP})


def band_address(serial: str) -> str:
    """A random static address derived from the serial: the same band keeps its address."""
    raw = bytearray(hashlib.sha256(serial.encode()).digest()[:6])
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


def band_identity_key(serial: str) -> bytes:
    """The band's IRK, its own and fixed like one written at manufacture (Bumble's default
    is sixteen zero bytes, the same for every device)."""
    return hashlib.sha256(b"acudevice-sim identity key " + serial.encode()).digest()[:16]


def _always_obeyed(chunk: bytes) -> bool:
    """An unsegmented STOP or ESTOP request (docs/protocol.md section 1 header)."""
    return (
        len(chunk) >= 5
        and not chunk[0] & SEGMENT
        and chunk[1] == Kind.REQUEST
        and chunk[4] in _ALWAYS_OBEYED
    )


def _authenticated(keys: PairingKeys | None) -> bool:
    if keys is None:
        return False
    return any(k is not None and k.authenticated for k in (keys.ltk, keys.ltk_peripheral))


class _Delegate(pairing.PairingDelegate):
    """The band has a display and no keyboard: it shows the passkey, the host types it."""

    def __init__(self, band: BleBand) -> None:
        super().__init__(io_capability=pairing.PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY)
        self.band = band

    async def generate_passkey(self) -> int:
        return (
            self.band.fixed_passkey
            if self.band.fixed_passkey is not None
            else (await super().generate_passkey())
        )

    async def display_number(self, number: int, digits: int) -> None:
        self.band.show_passkey(number)


class _Link:
    """One BLE connection as the simulation's `DeviceLink`."""

    def __init__(self, band: BleBand, connection: Connection) -> None:
        self.band = band
        self.connection = connection
        self.reassembler = Reassembler()
        self.authorized = False
        self.paired_here = False
        self.subscriptions = 0
        self.notified = 0
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.sender = asyncio.get_running_loop().create_task(self._send_loop())

    def from_device(self, payload: bytes) -> None:
        size = self.connection.att_mtu - 3
        for chunk in Segmenter(size).split(payload) if len(payload) > size else [payload]:
            self.outbox.put_nowait(chunk)

    def lose(self, why: str) -> None:
        log.info("dropping the BLE link: %s", why)
        asyncio.get_running_loop().create_task(self.band.disconnect())

    async def _send_loop(self) -> None:
        band = self.band
        while True:
            chunk = await self.outbox.get()
            if not band.subscribed(self.connection):
                band.stats["unsent"] += 1
                continue
            await band.device.notify_subscriber(self.connection, band.gatt.events, chunk)
            self.notified += 1
            band.stats["notified"] += 1


class BleBand:
    """A simulated band advertising on `controller`'s radio; `start()` then `stop()`."""

    def __init__(
        self,
        simulation: Simulation,
        controller: Controller,
        *,
        passkey: int | None = None,
        on_passkey: Callable[[int], None] | None = None,
        keystore_path: Path | None = None,
    ) -> None:
        self.simulation = simulation
        sim_device = simulation.device
        self.serial = sim_device.serial
        self.name = band_name(self.serial)
        self.address = band_address(self.serial)
        self.fixed_passkey = passkey
        self.on_passkey = on_passkey
        self.passkeys: asyncio.Queue[int] = asyncio.Queue()
        """Every passkey the band displayed, for tests that play the user."""
        self.stats = {
            "refused": 0,
            "refused_commands": 0,
            "notified": 0,
            "unsent": 0,
            "swallowed": 0,
        }
        self.links: list[_Link] = []
        self._link: _Link | None = None
        self._silent_until = 0.0
        self._stopping = False
        self._wake = asyncio.Event()
        self._advertise_task: asyncio.Task[None] | None = None
        self.gatt = BandGatt(
            on_control=self._on_control,
            battery=lambda: self.simulation.device.firmware.battery_percent,
            model=sim_device.model.name,
            serial=self.serial,
            firmware=sim_device.model.firmware_version,
        )
        address = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        host = Host(controller, AsyncPipeSink(controller))
        self.device = Device(name=self.name, address=address, host=host)
        self.device.irk = band_identity_key(self.serial)
        self.device.add_services(self.gatt.services)
        server = self.device.gatt_server
        cccd = server.get_descriptor_attribute(
            UUID(BLE_SERVICE_UUID),
            UUID(BLE_EVENTS_UUID),
            gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
        )
        self.gatt.protect_events_cccd(cccd)
        self.keystore: KeyStore = (
            JsonKeyStore(self.address, str(keystore_path)) if keystore_path else MemoryKeyStore()
        )
        self.device.keystore = self.keystore
        self.device.pairing_config_factory = lambda _connection: pairing.PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_Delegate(self),
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        server.on(server.EVENT_CHARACTERISTIC_SUBSCRIPTION, self._on_subscription)
        # Bumble hands write commands to the same callback as write requests; intercept them.
        self._write_command = server.on_att_write_command
        server.on_att_write_command = self._on_write_command
        self._write_request = server.on_att_write_request
        server.on_att_write_request = self._on_write_request
        self._swallow_writes = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.simulation.start()
        await self.device.power_on()
        await self._advertise()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        await self.disconnect()
        if self._advertise_task is not None:  # never cancel a task awaiting an HCI reply
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._advertise_task), 2.0)
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        await self.simulation.stop()

    async def _advertise(self) -> None:
        await self.device.start_advertising(
            advertising_data=advertising_data(self.name),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def _advertise_later(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(self._silent_until - loop.time(), 0.0))
        if not self._stopping and not self.device.connections:
            await self._advertise()

    async def disconnect(self) -> None:
        """Drop the current link from the band's side (as when it walks out of range)."""
        link = self._link
        if link is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await link.connection.disconnect(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    async def drop_link(self, silent_s: float) -> None:
        """Disconnect and stay silent (no advertising) for `silent_s` seconds."""
        self._silent_until = asyncio.get_running_loop().time() + silent_s
        await self.disconnect()

    def swallow_next_write(self) -> None:
        """The next write request on `control` is never answered (a stack that lost it):
        the host's GATT write waits until its own deadline, then gives up the link."""
        self._swallow_writes += 1

    async def forget_bonds(self) -> None:
        """A factory reset of the band's bond table: it no longer knows any host."""
        await self.keystore.delete_all()

    def show_passkey(self, number: int) -> None:
        self.passkeys.put_nowait(number)
        if self.on_passkey is not None:
            self.on_passkey(number)

    def subscribed(self, connection: Connection) -> bool:
        cccd = self.device.gatt_server.subscribers.get(connection, {}).get(self.gatt.events.handle)
        return bool(cccd and cccd[0] & 0x01)

    # ------------------------------------------------------------------ connections

    def _on_connection(self, connection: Connection) -> None:
        link = _Link(self, connection)
        self.links.append(link)
        self._link = link
        self.simulation.attach(link)
        connection.on(Connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnection(link))
        connection.on(Connection.EVENT_PAIRING, lambda keys: self._on_paired(link, keys))
        connection.on(
            Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
            lambda: asyncio.get_running_loop().create_task(self._on_encrypted(link)),
        )

    def _on_disconnection(self, link: _Link) -> None:
        link.sender.cancel()
        self.simulation.detach(link)
        if self._link is link:
            self._link = None
        self._advertise_task = asyncio.get_running_loop().create_task(self._advertise_later())

    def _on_paired(self, link: _Link, keys: PairingKeys) -> None:
        link.paired_here = True
        link.authorized = _authenticated(keys)
        log.info("paired with %s (MITM: %s)", link.connection.peer_address, link.authorized)

    async def _on_encrypted(self, link: _Link) -> None:
        connection = link.connection
        keys = await self.keystore.get(connection.peer_address.to_string(False))
        if not link.paired_here:  # a pairing on this link decides by its own keys
            link.authorized = bool(connection.encryption) and _authenticated(keys)

    def _on_subscription(
        self,
        connection: Connection,
        characteristic: gatt.Characteristic[bytes],
        notify: bool,
        _indicate: bool,
    ) -> None:
        if characteristic is self.gatt.events and notify and self._link is not None:
            self._link.subscriptions += 1

    # ------------------------------------------------------------------ control

    def _on_control(self, connection: Connection, value: bytes) -> None:
        link = self._link
        if link is None or link.connection is not connection:
            raise att.ATT_Error(att.ATT_UNLIKELY_ERROR_ERROR)
        if not (link.authorized and connection.encryption) and not _always_obeyed(value):
            self.stats["refused"] += 1
            raise att.ATT_Error(att.ATT_INSUFFICIENT_AUTHENTICATION_ERROR)
        payload = link.reassembler.feed(bytes(value))
        if payload is not None:
            self.simulation.from_host(payload)

    def _on_write_request(self, bearer: att.Bearer, request: att.ATT_Write_Request) -> None:
        if self._swallow_writes and request.attribute_handle == self.gatt.control.handle:
            self._swallow_writes -= 1
            self.stats["swallowed"] += 1
            log.info("swallowed a control write: it will never be answered")
            return
        self._write_request(bearer, request)

    def _on_write_command(self, bearer: att.Bearer, request: att.ATT_Write_Command) -> None:
        if request.attribute_handle == self.gatt.control.handle:
            self.stats["refused_commands"] += 1
            log.warning("ignored a write-without-response on control (it takes writes only)")
            return
        self._write_command(bearer, request)
