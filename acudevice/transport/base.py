"""The transport contract every link (sim, serial, TCP, BLE) implements.

A transport moves whole protocol payloads (bytes without framing); framing, if the medium
needs it, is the transport's business. Anything that goes wrong with the link surfaces as
`TransportClosed`, so callers handle one error, and every wait races it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from acudevice.errors import TransportClosed, TransportError

__all__ = ["Transport", "TransportClosed", "TransportError"]


@runtime_checkable
class Transport(Protocol):
    """One connection to one device. Not reusable after `close()`."""

    url: str

    @property
    def mtu(self) -> int:
        """Largest payload `send` accepts in one call."""
        ...

    async def connect(self) -> None:
        """Open the link; raises `TransportError` with advice when it cannot."""
        ...

    async def close(self) -> None:
        """Close the link; best effort, never raises, safe to call twice."""
        ...

    async def send(self, payload: bytes) -> None:
        """Send one payload; raises `TransportClosed` when the link is gone."""
        ...

    def payloads(self) -> AsyncIterator[bytes]:
        """Payloads received, in order; ends by raising `TransportClosed`."""
        ...
