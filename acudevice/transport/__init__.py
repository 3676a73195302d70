"""Links to devices, chosen by URL."""

from acudevice.transport.base import Transport, TransportClosed, TransportError
from acudevice.transport.schemes import available_schemes, open_transport

__all__ = ["Transport", "TransportClosed", "TransportError", "available_schemes", "open_transport"]
