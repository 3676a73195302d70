"""`BumbleClient`: bleak's client interface over a Bumble radio.

    client = BleakClient(address, backend=BumbleClient, radio=radio, passkey=ask, timeout=5)

Connecting to a peer we hold a bond for encrypts the link with the stored key at once, as an
operating system does; a peer that forgot us answers "PIN or key missing", raised as
`BleakBondRejected`. `pair()` bonds with LE Secure Connections; with a `passkey` source we
enter the peer's displayed passkey (MITM protection), without one it is Just Works.

Every GATT operation is awaited to completion before the next starts (callers serialise),
ATT errors become `BleakGATTProtocolError`, and a link lost mid-operation becomes
`BleakLinkLost` — never a stray `CancelledError` (Bumble cancels pending ATT requests when
a link drops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str
from bumble import core, gatt
from bumble.device import Connection, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy

from acudevice.ble.errors import BleakLinkLost, bleak_error
from acudevice.ble.radio import PREFERRED_MTU, PasskeySource, Radio

log = logging.getLogger("acudevice.ble")
T = TypeVar("T")

DISCONNECT_TIMEOUT_S = 3.0
_PROPERTY_NAMES: list[tuple[gatt.Characteristic.Properties, CharacteristicPropertyName]] = [
    (gatt.Characteristic.Properties.BROADCAST, "broadcast"),
    (gatt.Characteristic.Properties.READ, "read"),
    (gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (gatt.Characteristic.Properties.WRITE, "write"),
    (gatt.Characteristic.Properties.NOTIFY, "notify"),
    (gatt.Characteristic.Properties.INDICATE, "indicate"),
    (gatt.Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (gatt.Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
]


def _uuid(uuid: core.UUID) -> str:
    return normalize_uuid_str(uuid.to_hex_str())


class BumbleClient(BaseBleakClient):
    """One connection to one peripheral; bleak's `BleakClient` is the public face."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        radio: Radio,
        passkey: PasskeySource | None = None,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.address = self.address.upper()
        self._radio = radio
        self._passkey = passkey
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._disconnecting = False

    # ------------------------------------------------------------------ link

    @property
    def name(self) -> str:
        return self.address

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    @property
    def connection(self) -> Connection:
        """The Bumble connection (for tools that need its parameters)."""
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        connection = await self._radio.connect(self.address, self._timeout)
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            async with asyncio.timeout(self._timeout):
                if await self._radio.bond(self.address) is not None:
                    await self._op(connection.encrypt())
                elif pair:
                    await self.pair()
                peer = Peer(connection)
                await self._op(peer.request_mtu(PREFERRED_MTU))
                self.services = await self._discover(peer)
                self._peer = peer
        except BaseException as exc:
            await self._drop()
            if isinstance(exc, TimeoutError):
                raise BleakLinkLost(
                    f"{self.address}: link setup took over {self._timeout:g} s"
                ) from None
            raise

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in await self._op(peer.discover_services()):
            bleak_service = BleakGATTService(service, service.handle, _uuid(service.uuid))
            collection.add_service(bleak_service)
            for char in await self._op(peer.discover_characteristics(service=service)):
                names = [name for flag, name in _PROPERTY_NAMES if char.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    _uuid(char.uuid),
                    names,
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for desc in await self._op(peer.discover_descriptors(characteristic=char)):
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, _uuid(desc.type), bleak_char)
                    )
        return collection

    def _on_disconnection(self, reason: int) -> None:
        log.debug("%s: disconnected (reason 0x%02X)", self.address, reason)
        self._connection = None
        self._peer = None
        if not self._disconnecting and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        self._disconnecting = True
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection, self._peer = self._connection, None, None
        if connection is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await connection.disconnect()

    # ------------------------------------------------------------------ pairing

    async def pair(self, *args: Any, passkey: PasskeySource | None = None, **kwargs: Any) -> None:
        """Bond with LE Secure Connections; `passkey` (or the constructor's) gives MITM."""
        connection = self.connection
        self._radio.use_passkey(connection, passkey or self._passkey)
        await self._op(connection.pair())

    async def unpair(self) -> None:
        """Forget the bond on this side and drop the link."""
        await self._radio.forget(self.address)
        await self.disconnect()

    # ------------------------------------------------------------------ GATT

    async def _op(self, operation: Awaitable[T]) -> T:
        """Run one Bumble operation, translating its errors to bleak's."""
        task = asyncio.current_task()
        try:
            return await operation
        except asyncio.CancelledError:
            if task is not None and task.cancelling():
                raise
            raise BleakLinkLost(f"{self.address}: the link dropped during the operation") from None
        except Exception as exc:
            raise bleak_error(exc, self.address) from exc

    def _peer_or_raise(self) -> Peer:
        if self._peer is None:
            raise BleakLinkLost(f"{self.address}: not connected")
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        self._peer_or_raise()
        return bytearray(await self._op(proxy.read_value()))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        proxy: DescriptorProxy = descriptor.obj
        self._peer_or_raise()
        return bytearray(await self._op(proxy.read_value()))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        self._peer_or_raise()
        await self._op(proxy.write_value(bytes(data), with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        proxy: DescriptorProxy = descriptor.obj
        self._peer_or_raise()
        await self._op(proxy.write_value(bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        peer = self._peer_or_raise()

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._op(peer.subscribe(proxy, deliver, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._op(self._peer_or_raise().unsubscribe(proxy))
