"""Driving a `SimDevice` directly (no transport), stepping device time from the test."""

from __future__ import annotations

from typing import Any

from acudevice.protocol import FirmwareState
from acudevice.protocol.loading import WireSchedule
from simulator.client import DirectClient, ramp_hold_release
from simulator.core.device import SimDevice

SHORT = ramp_hold_release(peak_level=8_000, ramp_ms=8_000, hold_ms=5_000, release_ms=8_000)
NAUSEA = ramp_hold_release(
    peak_level=12_000, ramp_ms=30_000, hold_ms=60_000, release_ms=30_000, repeats=4
)


def client(model: str = "wristband-p1", **kwargs: Any) -> DirectClient:
    return DirectClient(SimDevice(model, **kwargs))


def loaded(schedule: WireSchedule = SHORT, **kwargs: Any) -> DirectClient:
    c = client(**kwargs)
    c.prepare(schedule)
    assert c.state is FirmwareState.LOADED
    return c
