"""BLE band workflows shared by the CLI and other front ends: scan, pair, forget.

Pairing bonds (LE Secure Connections, passkey entry), then opens the band through the
ordinary Device API to read INFO, and only then records it among the paired bands. If any
step fails nothing is left behind: no paired entry and no half-made bond.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from urllib.parse import quote

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from acudevice.ble import BumbleClient, BumbleScanner, PasskeySource, Radio, radios
from acudevice.ble.errors import user_error
from acudevice.device import Device
from acudevice.errors import InputError, Problem
from acudevice.protocol import BLE_SERVICE_UUID
from acudevice.store.paired import Bond, PairedDevice, PairedDevices, check_alias, new_entry
from acudevice.transport.ble import BleTransport, hci_spec, is_ble_address, radio_config

log = logging.getLogger("acudevice.pairing")

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
DEVICE_NAME_UUID = "00002a00-0000-1000-8000-00805f9b34fb"
BATTERY_READ_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Sighting:
    """One band seen advertising our service."""

    address: str
    name: str | None
    rssi: int
    battery: int | None = None
    paired: PairedDevice | None = None


@contextlib.contextmanager
def _store(given: PairedDevices | None) -> Iterator[PairedDevices]:
    """The caller's store, or one opened (and closed) for this call."""
    if given is not None:
        yield given
        return
    with PairedDevices() as store:
        yield store


@contextlib.asynccontextmanager
async def _radio(hci: str | None) -> AsyncIterator[Radio | None]:
    if hci is None:
        yield None
        return
    async with radios.use(hci, radio_config()) as radio:
        yield radio


def _client(address: str | BLEDevice, radio: Radio | None, timeout: float) -> BleakClient:
    if radio is None:
        return BleakClient(address, timeout=timeout)
    return BleakClient(address, timeout=timeout, backend=BumbleClient, radio=radio)


async def read_battery(address: str | BLEDevice, radio: Radio | None) -> int | None:
    """The open Battery Level characteristic, or None if the band cannot be read now."""
    try:
        async with asyncio.timeout(BATTERY_READ_TIMEOUT_S):
            async with _client(address, radio, BATTERY_READ_TIMEOUT_S) as client:
                return int((await client.read_gatt_char(BATTERY_LEVEL_UUID))[0])
    except (BleakError, TimeoutError, IndexError) as exc:
        log.info("no battery level from %s: %s", address, exc)
        return None


async def scan(
    *,
    timeout_s: float,
    hci: str | None = None,
    batteries: bool = True,
    on_update: Callable[[list[Sighting]], None] | None = None,
    paired: PairedDevices | None = None,
) -> list[Sighting]:
    """Bands advertising the acudevice service, strongest first; then their battery levels."""
    with _store(paired) as store:
        known = {d.address: d for d in store.all()}
    hci = hci_spec(hci)
    seen: dict[str, tuple[Sighting, BLEDevice]] = {}

    def report() -> None:
        if on_update is not None:
            on_update(sorted((s for s, _ in seen.values()), key=lambda s: -s.rssi))

    def found(device: BLEDevice, data: AdvertisementData) -> None:
        previous = seen.get(device.address)
        sighting = Sighting(
            address=device.address,
            name=data.local_name or (previous[0].name if previous else None),
            rssi=data.rssi,
            paired=known.get(device.address.upper()),
        )
        seen[device.address] = (sighting, device)
        report()

    try:
        await _listen(hci, found, timeout_s, seen if batteries else {}, report)
    except (BleakError, OSError) as exc:
        error = user_error(exc, "the scan", "the scan", timeout_s)
        raise error from (None if error is exc else exc)
    return sorted((s for s, _ in seen.values()), key=lambda s: -s.rssi)


async def _listen(
    hci: str | None,
    found: Callable[[BLEDevice, AdvertisementData], None],
    timeout_s: float,
    batteries_of: dict[str, tuple[Sighting, BLEDevice]],
    report: Callable[[], None],
) -> None:
    """Scan for `timeout_s`, then read the battery level of each band in `batteries_of`."""
    async with _radio(hci) as radio:
        kwargs: dict[str, object] = (
            {} if radio is None else {"backend": BumbleScanner, "radio": radio}
        )
        async with BleakScanner(found, [BLE_SERVICE_UUID], **kwargs):  # type: ignore[arg-type]
            await asyncio.sleep(timeout_s)
        for address, (sighting, device) in list(batteries_of.items()):
            level = await read_battery(device if radio is None else address, radio)
            batteries_of[address] = (replace(sighting, battery=level), device)
            report()


def _ble_url(address: str, hci: str | None) -> str:
    return f"ble://{address}" + (f"?hci={quote(hci, safe=':')}" if hci else "")


async def pair(
    address: str,
    *,
    passkey: PasskeySource,
    alias: str | None = None,
    hci: str | None = None,
    paired: PairedDevices | None = None,
) -> PairedDevice:
    """Bond with the band at `address`, read its INFO, and record it (alias optional)."""
    address = address.upper()
    if not is_ble_address(address):
        raise InputError([Problem("ADDRESS", "", f"{address!r} is not a Bluetooth address")])
    if alias is not None:
        check_alias(alias)
        with _store(paired) as store:
            clash = store.find(alias)
        if clash is not None and clash.address != address:
            raise InputError([Problem("--alias", "", f"{alias!r} already names {clash.address}")])
    hci = hci_spec(hci)
    config = radio_config()
    async with _radio(hci) as radio:
        if radio is not None:
            await radio.forget(address)  # pairing again replaces any earlier bond
        transport = BleTransport(_ble_url(address, hci), pair=True, passkey=passkey)
        try:
            async with Device(transport) as band:
                info = band.info
                name = await _device_name(transport)
            entry = new_entry(
                address=address,
                alias=alias,
                name=name,
                model=info.model,
                firmware=info.firmware_version,
                serial=info.serial,
                bond=Bond(
                    keystore=str(config.keystore_path) if radio is not None else "",
                    identity=config.identity.address if radio is not None else "",
                ),
            )
            with _store(paired) as store:
                return store.add(entry)
        except BaseException:
            if radio is not None:
                await radio.forget(address)
            raise


async def _device_name(transport: BleTransport) -> str | None:
    with contextlib.suppress(BleakError, TimeoutError, UnicodeDecodeError):
        async with asyncio.timeout(BATTERY_READ_TIMEOUT_S):
            raw = await transport.client.read_gatt_char(DEVICE_NAME_UUID)
            return bytes(raw).decode("utf-8")
    return None


async def forget(name: str, *, paired: PairedDevices | None = None) -> PairedDevice:
    """Remove a band from the paired bands and delete its bond from our key store."""
    with _store(paired) as store:
        device = store.get(name)
        if device.bond.keystore:
            await forget_bond(device)
        return store.remove(name)


async def forget_bond(device: PairedDevice) -> None:
    """Delete the keys for `device` from the key store it was bonded in (no radio needed)."""
    from bumble.keys import JsonKeyStore

    store = JsonKeyStore(device.bond.identity, device.bond.keystore)
    if await store.get(device.address) is not None:
        await store.delete(device.address)
