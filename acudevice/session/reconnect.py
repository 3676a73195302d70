"""Getting a lost band back: a few attempts with growing pauses, within a per-session budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from acudevice.device import Device, DeviceError
from acudevice.errors import TransportError


class GaveUp(Exception):
    """No more reconnecting in this session; the message says why."""


@dataclass
class Reconnector:
    connect: Callable[[str], Device]
    note: Callable[[str], None]
    attempts: int = 3
    """Per loss: out of range or refused, tried again after 0.5 s, 1 s, 2 s, ..."""
    losses_allowed: int = 5
    """Per session, not per loss: a link that drops after every reconnect would restart the
    same repeat for ever, so after this many losses the session ends instead."""
    losses: int = 0

    async def reopen(self, url: str) -> Device:
        """A freshly opened `Device` for `url`, or `GaveUp`."""
        self.losses += 1
        if self.losses > self.losses_allowed:
            raise GaveUp(
                f"lost the link {self.losses} times in one session "
                f"(allowed {self.losses_allowed}); ending rather than restarting again"
            )
        for attempt in range(self.attempts):
            await asyncio.sleep(0.5 * 2**attempt)
            device = self.connect(url)
            try:
                await device.open()
            except (DeviceError, TransportError) as exc:
                self.note(f"reconnect {attempt + 1}/{self.attempts} failed: {exc}")
                continue
            return device
        raise GaveUp(f"could not reconnect to {url} after {self.attempts} attempts")
