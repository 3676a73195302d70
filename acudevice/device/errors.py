"""What can go wrong talking to a device, one class per thing a caller handles differently."""

from __future__ import annotations

from acudevice.errors import AcuDeviceError
from acudevice.protocol import Result
from acudevice.transport import TransportClosed


class DeviceError(AcuDeviceError):
    """A device did not do what was asked."""


class RequestRefused(DeviceError):
    """The device answered with a non-OK result code."""

    def __init__(self, request: str, result: Result, advice: str = "") -> None:
        self.request = request
        self.result = result
        suffix = f": {advice}" if advice else ""
        super().__init__(f"device refused {request}: {result.name}{suffix}")


class RequestTimeout(DeviceError):
    """No answer within the deadline."""

    def __init__(self, request: str, seconds: float) -> None:
        self.request = request
        super().__init__(f"no answer to {request} within {seconds:g} s")


class DeviceDisconnected(DeviceError, TransportClosed):
    """The link dropped while we were using it."""


class IncompatibleDevice(DeviceError):
    """The device speaks no protocol version we do, or reports a model we do not know."""
