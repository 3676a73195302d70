"""A Bumble host stack acting as this computer's Bluetooth LE central.

A `Radio` is what an operating system's Bluetooth service is to bleak's built-in backends:
one HCI transport, one host stack, one identity address and one bond store, shared by every
scanner and client that uses it. The HCI transport is named by a Bumble transport spec:

    tcp-client:127.0.0.1:PORT   the virtual controller `acudevice-sim serve --ble` exposes
    usb:0                       a USB Bluetooth dongle (driver detached; see docs/ble.md)
    local:NAME                  a controller object registered in this process (tests)

`Radios` opens a radio on first use and closes it when its last user leaves, one per event
loop and spec. Bonds live in a Bumble JSON key store, namespaced by our identity address.

Identity: LE links use a random static address that stays the same across runs (saved next
to the bonds), so a band recognises this computer after a restart. The IRK is derived from
it; we do not use resolvable private addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bumble import hci, pairing
from bumble.controller import Controller
from bumble.core import PhysicalTransport
from bumble.device import Connection, Device
from bumble.host import Host
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore, PairingKeys
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport, TransportLostError

from acudevice.ble.errors import (
    BleakConnectTimeout,
    BleakRadioError,
    BleakRadioRefused,
    BleakRadioResetting,
)
from acudevice.paths import make_private, private_file

log = logging.getLogger("acudevice.ble")

PREFERRED_MTU = 247
CANCEL_GRACE_S = 1.0
"""How long a controller gets to confirm a cancelled connection attempt."""
SETTLE_S = 0.1
"""How long an attempt the controller no longer holds gets to end by itself."""

PasskeySource = Callable[[], Awaitable[int | None]]
"""Asked for the passkey the peer displays; None refuses the pairing."""


@dataclass(frozen=True)
class Identity:
    address: str
    """A random static address, e.g. `C3:12:...`; the two top bits are set."""

    @property
    def irk(self) -> bytes:
        raw = bytes(hci.Address(self.address))
        return (raw * 3)[:16]

    @classmethod
    def generate(cls) -> Identity:
        raw = bytearray(secrets.token_bytes(6))
        raw[5] |= 0xC0  # static random: the most significant bits are 0b11
        return cls(hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS).to_string(False))

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        try:
            return cls(str(json.loads(path.read_text(encoding="utf-8"))["address"]))
        except (OSError, ValueError, KeyError, TypeError):
            identity = cls.generate()
            make_private(path.parent, notice=False)
            tmp = path.with_name(path.name + ".tmp")
            private_file(tmp).write_text(json.dumps({"address": identity.address}) + "\n")
            os.replace(tmp, path)
            return identity


@dataclass(frozen=True)
class RadioConfig:
    identity: Identity
    keystore_path: Path | None = None
    """A Bumble JSON key store file; None keeps bonds in memory (tests, one-off tools)."""


class _Delegate(pairing.PairingDelegate):
    """This computer's side of pairing: a keyboard, so passkey entry gives MITM protection."""

    def __init__(self, passkey: PasskeySource | None) -> None:
        io = pairing.PairingDelegate.IoCapability
        super().__init__(io.KEYBOARD_INPUT_ONLY if passkey else io.NO_OUTPUT_NO_INPUT)
        self._passkey = passkey

    async def get_number(self) -> int | None:
        return await self._passkey() if self._passkey else None


class Radio:
    """One Bumble `Device` in the central role on one HCI transport. Use through `Radios`."""

    def __init__(self, spec: str, config: RadioConfig, controller: Controller | None) -> None:
        self.spec = spec
        self.config = config
        self._controller = controller
        self._transport: Transport | None = None
        self._passkeys: dict[Connection, PasskeySource | None] = {}
        self.address_types: dict[str, hci.AddressType] = {}
        """Address type of each advertiser seen, so a later connect uses the right one."""
        self.device: Device = self._make_device()
        self.wedged = False
        self._connecting = asyncio.Lock()
        """A controller takes one LE connection attempt at a time (Bumble refuses a second
        with "connection already pending"): the bands of a gateway wait their turn."""

    def _make_device(self) -> Device:
        address = hci.Address(self.config.identity.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        device = Device(name="acudevice", address=address)
        device.irk = self.config.identity.irk
        device.pairing_config_factory = self._pairing_config
        return device

    def _pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        return pairing.PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_Delegate(self._passkeys.get(connection)),
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )

    @property
    def keystore(self) -> KeyStore:
        assert self.device.keystore is not None, "radio not open"
        return self.device.keystore

    async def open(self) -> None:
        if self._controller is not None:
            controller = self._controller
            host = Host(controller, AsyncPipeSink(controller))
        else:
            try:
                self._transport = await open_transport(self.spec)
            except Exception as exc:  # Bumble raises many kinds; all mean "no radio here"
                raise BleakRadioError(
                    f"cannot open the HCI transport {self.spec!r}: {exc}"
                ) from exc
            host = Host(self._transport.source, self._transport.sink)
        self.device.host = host
        path = self.config.keystore_path
        self.device.keystore = (
            JsonKeyStore(self.config.identity.address, str(path)) if path else MemoryKeyStore()
        )
        try:
            async with asyncio.timeout(10.0):
                await self.device.power_on()
        except Exception as exc:
            await self.close()
            raise _power_on_error(self.spec, exc) from exc
        log.debug("radio %s up as %s", self.spec, self.config.identity.address)

    async def close(self) -> None:
        """Drop every link and release the transport; never raises."""
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await connection.disconnect()
        if self._controller is not None:
            self._controller.host = None
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
            self._transport = None
        if self.config.keystore_path is not None:  # Bumble writes its key store 0644
            with contextlib.suppress(OSError):
                make_private(self.config.keystore_path.parent, notice=False)

    # ------------------------------------------------------------------ bonds

    async def bond(self, address: str) -> PairingKeys | None:
        return await self.keystore.get(_key(address))

    async def forget(self, address: str) -> bool:
        if await self.bond(address) is None:
            return False
        await self.keystore.delete(_key(address))
        return True

    def use_passkey(self, connection: Connection, source: PasskeySource | None) -> None:
        self._passkeys[connection] = source

    # ------------------------------------------------------------------ links

    def peer_address(self, address: str) -> hci.Address:
        kind = self.address_types.get(address.upper(), hci.Address.RANDOM_DEVICE_ADDRESS)
        return hci.Address(address, kind)

    async def connect(self, address: str, timeout_s: float) -> Connection:
        """A link to `address` within `timeout_s`; a late link is dropped, never leaked.

        On the deadline the attempt is cancelled at the controller (LE Create Connection
        Cancel) and left to end there, in Bumble's own hands: cancelling Bumble's task instead
        leaves a link that completes just then with nobody to own it (Bumble's handler fails
        on it), and the band, holding that link, never advertises for us again. A controller
        that never confirms the cancel (Bumble's virtual one, when the address does not
        exist) would refuse every later connect, so the radio is marked wedged and reopened
        by its next user.
        """
        peer = self.peer_address(address)
        async with self._connecting:  # the wait for our turn is not the attempt's deadline
            if self.wedged:
                raise BleakRadioResetting(f"the radio at {self.spec!r} is being reset")
            await self._drop_unowned_links()
            attempt = asyncio.ensure_future(self.device.connect(peer, timeout=None))
            try:
                done, _ = await asyncio.wait({attempt}, timeout=timeout_s)
            except BaseException:  # our caller gave up: so does the controller
                await self._give_up(attempt)
                raise
            if done:
                return attempt.result()
            await self._give_up(attempt)
            raise BleakConnectTimeout(address, timeout_s)

    async def _give_up(self, attempt: asyncio.Future[Connection]) -> None:
        """End a connection attempt: cancel it at the controller and let it end there; one
        not yet at the controller (still scanning to resolve a bonded band's address) is
        cancelled here. A link that made it meanwhile is dropped."""
        try:
            async with asyncio.timeout(CANCEL_GRACE_S):
                if not await self._cancel_pending():
                    # Nothing pending at the controller: the attempt has just ended (its
                    # event is already in), or it has not got that far.
                    await asyncio.wait({attempt}, timeout=SETTLE_S)
                    if not attempt.done():
                        attempt.cancel()
                        await self._cancel_pending()  # in case it got there just now
                await asyncio.wait({attempt})
        except (TimeoutError, hci.HCI_Error) as exc:
            log.warning(
                "%s: the controller did not confirm the cancelled connect (%s); "
                "resetting the radio",
                self.spec,
                type(exc).__name__,
            )
            self.wedged = True
            attempt.cancel()
            return
        if not attempt.cancelled() and attempt.exception() is None:
            late = attempt.result()  # it connected just as we gave up: do not leak the link
            with contextlib.suppress(Exception):
                await late.disconnect()

    async def _drop_unowned_links(self) -> None:
        """Drop links the controller made that Bumble's device never took: it fails on a link
        that completes just as its connect was given up, and the band holding such a link
        never advertises again. Cheap: a look at two tables, before every connect."""
        host = self.device.host
        owned = self.device.connections
        for handle, link in list(host.connections.items()):
            if handle not in owned and link.transport == PhysicalTransport.LE:
                log.warning("%s: dropping a link nobody owns (to %s)", self.spec, link.peer_address)
                with contextlib.suppress(Exception):
                    await self.device.send_command(
                        hci.HCI_Disconnect_Command(
                            connection_handle=handle,
                            reason=hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR,
                        )
                    )

    async def _cancel_pending(self) -> bool:
        """LE Create Connection Cancel; False when the controller had none pending."""
        try:
            await self.device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
        except hci.HCI_Error as exc:
            if exc.error_code == hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR:
                return False
            raise
        return True


def _power_on_error(spec: str, exc: Exception) -> BleakRadioError:
    """One line saying why a radio did not come up."""
    limited = hci.HCI_ErrorCode.CONNECTION_REJECTED_DUE_TO_LIMITED_RESOURCES_ERROR
    if isinstance(exc, hci.HCI_Error) and exc.error_code == limited:
        return BleakRadioRefused(
            f"the radio at {spec!r} refused this host: it has no room for another"
        )
    if isinstance(exc, TransportLostError):
        return BleakRadioRefused(
            f"the radio at {spec!r} closed the connection before it powered on"
        )
    return BleakRadioError(f"the radio at {spec!r} did not power on: {exc or type(exc).__name__}")


def _key(address: str) -> str:
    """Bumble's key store names a random-address peer by the bare address, upper case."""
    return address.upper()


@dataclass
class _Entry:
    radio: Radio
    users: int = 0
    opened: bool = False
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Users arriving together share one `open()` (two would power the controller on twice)."""


class Radios:
    """Open radios (per event loop and spec) and in-process controllers (by name).

    `acudevice.ble.radios` is the process-wide instance; tests register a controller under a
    name and address it as `local:NAME`.
    """

    def __init__(self) -> None:
        self._local: dict[str, Controller] = {}
        self._open: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Entry]] = (
            weakref.WeakKeyDictionary()
        )

    def register_local(self, name: str, controller: Controller) -> str:
        """Make `controller` reachable as `local:NAME`; returns that spec."""
        self._local[name] = controller
        return f"local:{name}"

    def unregister_local(self, name: str) -> None:
        self._local.pop(name, None)

    def _controller_for(self, spec: str) -> Controller | None:
        if not spec.startswith("local:"):
            return None
        name = spec.removeprefix("local:")
        try:
            return self._local[name]
        except KeyError:
            known = ", ".join(sorted(self._local)) or "none"
            raise BleakRadioError(
                f"no in-process controller named {name!r} (known: {known})"
            ) from None

    @contextlib.asynccontextmanager
    async def use(self, spec: str, config: RadioConfig) -> AsyncIterator[Radio]:
        opened = self._open.setdefault(asyncio.get_running_loop(), {})
        entry = opened.get(spec)
        if entry is None or (entry.radio.wedged and entry.users == 0):
            entry = opened[spec] = _Entry(Radio(spec, config, self._controller_for(spec)))
        entry.users += 1
        try:
            async with entry.opening:
                if not entry.opened:
                    await entry.radio.open()
                    entry.opened = True
            yield entry.radio
        finally:
            entry.users -= 1
            if entry.users == 0:
                if opened.get(spec) is entry:
                    del opened[spec]
                await entry.radio.close()


radios = Radios()
