"""The band's GATT layout and advertisement (docs/protocol.md section 7, docs/ble.md).

| service / characteristic         | properties        | who may use it                        |
|----------------------------------|-------------------|---------------------------------------|
| acudevice service                |                   |                                       |
|   control                        | write             | MITM-bonded links; STOP/ESTOP: anyone |
|   events (+ CCCD)                | notify            | CCCD write needs an encrypted link    |
| Battery 0x180F / level 0x2A19    | read, notify      | anyone                                |
| Device Information 0x180A        | read              | anyone                                |

Bumble's GATT server does not enforce characteristic properties, so the callbacks here do:
reading `control` or `events`, and writing `events`, answer the ATT error a real stack would.

Advertisement: one legacy PDU carries at most 31 bytes, and Bumble's virtual controller
never delivers a scan response, so everything a scanner needs goes in the advertisement:
flags (3 bytes) + our 128-bit service UUID (18) + the complete local name (2 + up to 8).
"AcuBand-XXXX" (14) would make 35 bytes, so the name is `Acu-XXXX`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bumble import att, data_types, gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from acudevice.protocol import BLE_CONTROL_UUID, BLE_EVENTS_UUID, BLE_SERVICE_UUID

LEGACY_ADVERTISING_MAX = 31
NAME_PREFIX = "Acu-"
MANUFACTURER = "acudevice simulator"


def band_name(serial: str) -> str:
    """`Acu-` and the last four letters or digits of the serial, upper case."""
    tail = "".join(c for c in serial if c.isalnum())[-4:].upper()
    return NAME_PREFIX + tail.rjust(4, "0")


def advertising_data(name: str) -> bytes:
    """The advertisement; raises if it would not fit one legacy advertising PDU."""
    flags = (
        AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE
        | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
    )
    data = bytes(
        AdvertisingData(
            [
                data_types.Flags(flags),
                data_types.CompleteListOf128BitServiceUUIDs([UUID(BLE_SERVICE_UUID)]),
                data_types.CompleteLocalName(name),
            ]
        )
    )
    if len(data) > LEGACY_ADVERTISING_MAX:
        raise ValueError(f"advertisement for {name!r} is {len(data)} bytes; 31 fit")
    return data


def _refuse(code: int) -> Callable[..., Any]:
    """A read or write handler that always answers with ATT error `code`."""

    def refuse(*_args: object) -> Any:
        raise att.ATT_Error(code)

    return refuse


class BandGatt:
    """The services, wired to `on_control(connection, value)` and `battery()`."""

    def __init__(
        self,
        *,
        on_control: Callable[[Connection, bytes], None],
        battery: Callable[[], int],
        model: str,
        serial: str,
        firmware: str,
    ) -> None:
        self.control: gatt.Characteristic[bytes] = gatt.Characteristic(
            BLE_CONTROL_UUID,
            gatt.Characteristic.Properties.WRITE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue[bytes](
                read=_refuse(att.ATT_READ_NOT_PERMITTED_ERROR), write=on_control
            ),
        )
        self.events: gatt.Characteristic[bytes] = gatt.Characteristic(
            BLE_EVENTS_UUID,
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            gatt.CharacteristicValue[bytes](
                read=_refuse(att.ATT_READ_NOT_PERMITTED_ERROR),
                write=_refuse(att.ATT_WRITE_NOT_PERMITTED_ERROR),
            ),
        )
        self.service = gatt.Service(BLE_SERVICE_UUID, [self.control, self.events])
        self.battery = BatteryService(lambda _connection: battery())
        self.information = DeviceInformationService(
            manufacturer_name=MANUFACTURER,
            model_number=model,
            serial_number=serial,
            firmware_revision=firmware,
        )

    @property
    def services(self) -> list[gatt.Service]:
        return [self.service, self.battery, self.information]

    def protect_events_cccd(self, server_descriptor: att.Attribute[bytes] | None) -> None:
        """Subscribing to events needs an encrypted link (the CCCD Bumble adds is open)."""
        if server_descriptor is None:
            raise RuntimeError("the events characteristic has no CCCD")
        server_descriptor.permissions |= att.Attribute.Permissions.WRITE_REQUIRES_ENCRYPTION
