"""`BumbleScanner`: bleak's scanner interface over a Bumble radio.

async with radios.use(spec, config) as radio:
    async with BleakScanner(service_uuids=[...], backend=BumbleScanner, radio=radio):
        ...
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.uuids import normalize_uuid_str
from bumble.device import Advertisement, Device

from acudevice.ble.radio import Radio

log = logging.getLogger("acudevice.ble")

# AD types (Bluetooth Core Specification Supplement, part A)
_UUID_LISTS = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}
_SHORT_NAME, _COMPLETE_NAME, _TX_POWER, _MANUFACTURER = 0x08, 0x09, 0x0A, 0xFF
_SERVICE_DATA = {0x16: 2, 0x20: 4, 0x21: 16}


def _uuid(raw: bytes) -> str:
    """An AD UUID (little-endian, 2, 4 or 16 bytes) as bleak's normalised string."""
    return normalize_uuid_str(raw[::-1].hex())


def parse_advertisement(structures: list[tuple[int, bytes]], rssi: int) -> AdvertisementData:
    """bleak's `AdvertisementData` from raw AD structures; repeated structures count once."""
    names: dict[int, str] = {}
    uuids: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    for ad_type, data in structures:
        if ad_type in _UUID_LISTS:
            size = _UUID_LISTS[ad_type]
            for i in range(0, len(data) - size + 1, size):
                uuid = _uuid(data[i : i + size])
                if uuid not in uuids:
                    uuids.append(uuid)
        elif ad_type in (_SHORT_NAME, _COMPLETE_NAME):
            names.setdefault(ad_type, data.decode("utf-8", errors="replace"))
        elif ad_type == _TX_POWER and len(data) == 1:
            tx_power = struct.unpack("<b", data)[0]
        elif ad_type == _MANUFACTURER and len(data) >= 2:
            company = int.from_bytes(data[:2], "little")
            manufacturer.setdefault(company, data[2:])
        elif ad_type in _SERVICE_DATA and len(data) >= _SERVICE_DATA[ad_type]:
            size = _SERVICE_DATA[ad_type]
            service_data.setdefault(_uuid(data[:size]), data[size:])
    return AdvertisementData(
        local_name=names.get(_COMPLETE_NAME, names.get(_SHORT_NAME)),
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=uuids,
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(),
    )


class BumbleScanner(BaseBleakScanner):
    """Scans on `radio` (a keyword argument BleakScanner passes through)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        *,
        radio: Radio,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._radio = radio
        self._active = scanning_mode == "active"
        self._scanning = False

    async def start(self) -> None:
        self.seen_devices = {}
        device = self._radio.device
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await device.start_scanning(active=self._active, filter_duplicates=False)
        self._scanning = True

    async def stop(self) -> None:
        device = self._radio.device
        device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        if self._scanning:
            self._scanning = False
            await device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        structures = [(int(t), bytes(d)) for t, d in advertisement.data.ad_structures]
        data = parse_advertisement(structures, advertisement.rssi)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = advertisement.address.to_string(False)
        self._radio.address_types[address] = advertisement.address.address_type
        device = self.create_or_update_device(
            address, address, data.local_name, advertisement, data
        )
        self.call_detection_callbacks(device, data)
