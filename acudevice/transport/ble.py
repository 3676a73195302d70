"""`ble://AA:BB:CC:DD:EE:FF` — a band over Bluetooth LE, through bleak.

Which radio: the URL's `hci=` option, else the `ACUDEVICE_BLE_HCI` environment variable,
names a Bumble HCI transport (`tcp-client:127.0.0.1:PORT` for `acudevice-sim serve --ble`,
`usb:0` for a dongle, `local:NAME` for a controller registered in-process); bleak then runs
on our Bumble backend (`acudevice.ble`). Without either, bleak's own backend for this
operating system is used (BlueZ, CoreBluetooth, WinRT), and pairing is the OS's business.

Each `connect()` builds a fresh `BleakClient` (a client is never reused across links, so
no notification handler can survive into the next one), subscribes to `events` exactly once,
and writes requests to `control` with response, one GATT operation at a time. Payloads
larger than ATT_MTU - 3 are segmented (`acudevice.protocol.segmentation`). Connect and
disconnect have deadlines; connect retries by error kind (`ble.errors.with_backoff`).
On the Bumble backend, connecting to a band we hold no bond for is refused before any radio
traffic: control needs a passkey-paired link (`acudevice pair ADDRESS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from bleak import BleakClient
from bleak.exc import BleakError, BleakGATTProtocolError

from acudevice.ble import BumbleClient, Identity, PasskeySource, Radio, RadioConfig, radios
from acudevice.ble.errors import (
    AUTH_CODES,
    BleNotPaired,
    BleOutOfRange,
    pair_advice,
    user_error,
    with_backoff,
)
from acudevice.paths import make_private, private_data_dir
from acudevice.protocol import BLE_CONTROL_UUID, BLE_EVENTS_UUID, MAX_PAYLOAD
from acudevice.protocol.segmentation import Reassembler, Segmenter
from acudevice.transport.base import TransportClosed, TransportError
from acudevice.transport.framed import number_option, query_options
from acudevice.transport.inbox import Inbox

log = logging.getLogger("acudevice.transport")

HCI_ENV = "ACUDEVICE_BLE_HCI"
OPTIONS = {
    "hci": f"Bumble HCI transport for the radio (default: ${HCI_ENV}, else the OS stack)",
    "timeout_s": "deadline for one connection attempt, default 10",
    "attempts": "connection attempts before giving up, default 3",
}
WRITE_TIMEOUT_S = 3.0
DISCONNECT_TIMEOUT_S = 3.0
_ADDRESS = re.compile(r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$|^[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}$")


def is_ble_address(text: str) -> bool:
    """A Bluetooth address (`AA:BB:CC:DD:EE:FF`) or a macOS device UUID."""
    return bool(_ADDRESS.match(text.upper()))


def radio_config() -> RadioConfig:
    """This computer's identity and bond store, in the user data directory."""
    folder = make_private(private_data_dir() / "ble")
    return RadioConfig(Identity.load_or_create(folder / "identity.json"), folder / "bonds.json")


def hci_spec(url_option: str | None = None) -> str | None:
    return url_option or os.environ.get(HCI_ENV) or None


class BleTransport:
    """One BLE link to one band; see the module docstring."""

    def __init__(
        self, url: str, *, pair: bool = False, passkey: PasskeySource | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ble":
            raise TransportError(f"{url}: not a ble:// URL")
        address = parts.netloc.upper()
        if not is_ble_address(address) or parts.path not in ("", "/"):
            raise TransportError(
                f"{url}: write ble://AA:BB:CC:DD:EE:FF (the address `acudevice scan` shows)"
            )
        self.url = url
        self.address = address
        options = query_options(url, OPTIONS)
        self.hci = hci_spec(options.get("hci"))
        self.timeout_s = number_option(url, options, "timeout_s", 10.0)
        attempts = number_option(url, options, "attempts", 3)
        if attempts != int(attempts) or attempts < 1:
            raise TransportError(f"{url}: attempts must be a whole number, 1 or more")
        self.attempts = int(attempts)
        self.label = address
        """How the user names this band (its alias once resolved), for advice texts."""
        self._pair = pair
        self._passkey = passkey
        self._state = "new"  # new -> open -> closed
        self._closed_reason = ""
        self._client: BleakClient | None = None
        self._radio_stack = contextlib.AsyncExitStack()
        self._gatt_lock = asyncio.Lock()
        self._inbox = Inbox(2048)
        self._reassembler = Reassembler()
        self._segmenter: Segmenter | None = None
        self.att_mtu = 23
        self.subscriptions = 0
        """`events` subscriptions made on this link: exactly one once connected."""
        self.notifications = 0

    @property
    def mtu(self) -> int:
        return MAX_PAYLOAD

    @property
    def client(self) -> BleakClient:
        if self._client is None:
            raise TransportClosed(f"{self.url}: not connected")
        return self._client

    # ------------------------------------------------------------------ connect

    async def connect(self) -> None:
        if self._state != "new":
            raise TransportError(f"{self.url}: a transport connects once; make a new one")
        deadline = self.timeout_s * self.attempts + 5.0
        try:
            async with asyncio.timeout(deadline):
                await with_backoff(
                    self._attempt,
                    attempts=self.attempts,
                    deadline_s=deadline,
                    describe=lambda exc: user_error(exc, self.address, self.label, self.timeout_s),
                )
        except BaseException as exc:
            self._mark_closed("connect failed")
            await self._release()
            if isinstance(exc, TimeoutError):
                raise user_error(exc, self.address, self.label, deadline) from None
            raise
        if self._state == "closed":
            await self._release()
            raise BleOutOfRange(f"{self.address} disconnected right after connecting", "try again")
        self._state = "open"
        log.info("%s: connected (ATT MTU %d)", self.url, self.att_mtu)

    async def _attempt(self) -> None:
        """One try on a fresh client (and, after a failure, a freshly opened radio)."""
        await self._release()
        client = await self._new_client()
        try:
            await client.connect()
            if self._pair and self.hci is not None:
                await client.pair(passkey=self._passkey)
            elif self._pair:
                await client.pair()  # the operating system asks for the passkey
            self.att_mtu = client.mtu_size
            self._segmenter = Segmenter(self.att_mtu - 3)
            await client.start_notify(BLE_EVENTS_UUID, self._on_notify)
            self.subscriptions += 1
        except BaseException:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await client.disconnect()
            raise
        self._client = client

    async def _new_client(self) -> BleakClient:
        kwargs: dict[str, Any] = {"timeout": self.timeout_s}
        if self.hci is not None:
            radio: Radio = await self._radio_stack.enter_async_context(
                radios.use(self.hci, radio_config())
            )
            if not self._pair and await radio.bond(self.address) is None:
                raise BleNotPaired(
                    f"{self.address} is not paired with this computer", pair_advice(self.address)
                )
            kwargs.update(backend=BumbleClient, radio=radio)
        return BleakClient(self.address, self._on_disconnected, **kwargs)

    # ------------------------------------------------------------------ link events

    def _on_notify(self, _sender: object, data: bytearray) -> None:
        if self._state == "closed":
            return
        self.notifications += 1
        payload = self._reassembler.feed(bytes(data))
        if payload is not None:
            self._inbox.put(payload)

    def _on_disconnected(self, client: BleakClient) -> None:
        if client is not self._client:
            return  # a failed attempt's client; that attempt reports its own error
        if self._state == "open":
            log.warning("%s: the band dropped the link", self.url)
        self._mark_closed("the band disconnected (out of range, switched off, or reset)")

    def _mark_closed(self, reason: str) -> None:
        self._state = "closed"
        self._closed_reason = self._closed_reason or reason
        self._inbox.close(self._closed_reason)

    # ------------------------------------------------------------------ Transport API

    async def send(self, payload: bytes) -> None:
        """Write one payload to `control` (segmented if it must be), with response."""
        if self._state != "open" or self._segmenter is None:
            raise TransportClosed(f"{self.url}: {self._closed_reason or 'not connected'}")
        async with self._gatt_lock:
            for chunk in self._segmenter.split(payload):
                await self._write(chunk)

    async def _write(self, chunk: bytes) -> None:
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self.client.write_gatt_char(BLE_CONTROL_UUID, chunk, response=True)
        except BleakGATTProtocolError as exc:
            if exc.code in AUTH_CODES:
                self._mark_closed("control refused: not paired")
                raise BleNotPaired(
                    f"{self.address} refused control ({exc.code.name})", pair_advice(self.address)
                ) from None
            self._mark_closed(f"the band refused a write: {exc.code.name}")
            raise TransportClosed(f"{self.url}: the band refused a write: {exc.code.name}") from exc
        except (TimeoutError, BleakError) as exc:
            self._mark_closed(f"write failed: {exc or 'timed out'}")
            error = user_error(exc, self.address, self.label, WRITE_TIMEOUT_S)
            raise (
                error
                if isinstance(error, TransportClosed)
                else BleOutOfRange(
                    f"the link to {self.address} failed during a write", "move the band closer"
                )
            ) from exc

    async def payloads(self) -> AsyncIterator[bytes]:
        if self._state == "new":
            raise TransportClosed(f"{self.url}: not connected; call connect() first")
        async for payload in self._inbox.drain(self.url):
            yield payload

    async def close(self) -> None:
        """Best effort and idempotent; never raises, never writes (no unsubscribe)."""
        self._mark_closed("closed by us")
        await self._release()

    async def _release(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await client.disconnect()
        with contextlib.suppress(Exception):
            await self._radio_stack.aclose()
        self._radio_stack = contextlib.AsyncExitStack()
