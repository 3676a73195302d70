"""acudevice: drive acupressure wearables safely from a computer or gateway."""

from acudevice.errors import AcuDeviceError

__all__ = ["AcuDeviceError"]
__version__ = "0.1.0"
