"""A bleak backend on Bumble: scan, connect, pair and use GATT through any Bumble HCI transport.

bleak chooses a backend per platform (BlueZ, CoreBluetooth, WinRT); this one drives a Bumble
host stack instead, so the same bleak code runs on Bumble's virtual radio (tests, the
simulator) or on a USB dongle with no operating-system Bluetooth service in the way:

    async with radios.use("usb:0", RadioConfig(Identity.load_or_create(path))) as radio:
        async with BleakClient(address, backend=BumbleClient, radio=radio) as client:
            ...
"""

from acudevice.ble.client import BumbleClient
from acudevice.ble.errors import (
    BleakBondRejected,
    BleakConnectTimeout,
    BleakLinkLost,
    BleakPairingFailed,
    BleakRadioError,
    BleakRadioRefused,
    BleakRadioResetting,
)
from acudevice.ble.radio import Identity, PasskeySource, Radio, RadioConfig, Radios, radios
from acudevice.ble.scanner import BumbleScanner, parse_advertisement

__all__ = [
    "BleakBondRejected",
    "BleakConnectTimeout",
    "BleakLinkLost",
    "BleakPairingFailed",
    "BleakRadioError",
    "BleakRadioRefused",
    "BleakRadioResetting",
    "BumbleClient",
    "BumbleScanner",
    "Identity",
    "PasskeySource",
    "Radio",
    "RadioConfig",
    "Radios",
    "parse_advertisement",
    "radios",
]
