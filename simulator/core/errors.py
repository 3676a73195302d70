"""Errors the simulator raises on purpose; all are `AcuDeviceError`s."""

from __future__ import annotations

from acudevice.errors import AcuDeviceError


class SimError(AcuDeviceError):
    """A simulator option, model or fault that cannot be used."""


class SimOptionError(SimError, ValueError):
    """A `sim://` option or CLI flag that does not parse; the message says what would."""


class FaultSpecError(SimOptionError):
    """A `fault=` option that does not parse."""
