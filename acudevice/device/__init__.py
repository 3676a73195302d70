"""Connected devices: the async API over any transport."""

from acudevice.device.device import Device, DeviceInfo, connect
from acudevice.device.errors import (
    DeviceDisconnected,
    DeviceError,
    IncompatibleDevice,
    RequestRefused,
    RequestTimeout,
)

__all__ = [
    "Device",
    "DeviceDisconnected",
    "DeviceError",
    "DeviceInfo",
    "IncompatibleDevice",
    "RequestRefused",
    "RequestTimeout",
    "connect",
]
