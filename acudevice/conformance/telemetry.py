"""Conformance check of batched telemetry (docs/protocol.md section 5, SET_TELEMETRY).

A band advertising `TELEMETRY_BATCH` must batch on request without losing, reordering or
delaying a sample past the events that follow it, refuse a batch window above 5 s, and go
back to single samples on `SET_TELEMETRY 0`. The transport is watched so the check sees
which payloads were batches; the host's stream unpacks them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from itertools import pairwise

from acudevice.conformance.support import (
    CheckFailed,
    expect,
    pressure_schedule,
    refused,
    require_pressure,
    start_schedule,
    wall_for,
)
from acudevice.device import Device
from acudevice.device.addresses import open_device_transport
from acudevice.protocol import (
    Capabilities,
    Event,
    FirmwareState,
    Kind,
    Result,
    SegmentStarted,
    SetTelemetry,
    StateChanged,
    Telemetry,
    TelemetryCode,
    VentStarted,
)
from acudevice.transport import Transport

BATCH_MS = 1000
TOO_LONG_MS = 6000


class _Watched:
    """A transport that keeps every telemetry payload it delivers, to tell batches apart."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.url = inner.url
        self.telemetry: list[bytes] = []

    @property
    def mtu(self) -> int:
        return self.inner.mtu

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def send(self, payload: bytes) -> None:
        await self.inner.send(payload)

    async def payloads(self) -> AsyncIterator[bytes]:
        async for payload in self.inner.payloads():
            if len(payload) > 4 and payload[1] == Kind.TELEMETRY:
                self.telemetry.append(payload)
            yield payload

    @property
    def telemetry_opcodes(self) -> list[int]:
        return [payload[4] for payload in self.telemetry]


async def check_telemetry_batches(url: str) -> str:
    watched = _Watched(open_device_transport(url))
    async with Device(watched, heartbeat_interval_s=1.0) as device:
        if Capabilities.TELEMETRY_BATCH not in device.info.capabilities:
            raise CheckFailed("skip: INFO lacks TELEMETRY_BATCH (the band sends single samples)")
        require_pressure(device)
        if device.info.time_scale == 0:
            # A byte-stream simulator at speed=max thins telemetry (docs/simulator.md), so
            # spacing says nothing about losses; a bounded speed spaces samples instead.
            raise CheckFailed("skip: the device runs as fast as it can (time_scale 0); use a speed")
        await refused(
            device,
            SetTelemetry(batch_ms=TOO_LONG_MS),
            Result.INVALID_PARAMETER,
            f"SET_TELEMETRY {TOO_LONG_MS} ms (the protocol's longest batch window is 5000 ms)",
        )
        await refused(
            device, SetTelemetry(batch_ms=BATCH_MS), Result.OK, f"SET_TELEMETRY {BATCH_MS} ms"
        )
        schedule = pressure_schedule([(2_000, 4_000), (3_000, 4_000), (2_000, 0)], 10_000)
        stream = device.stream()
        await start_schedule(device, schedule)
        seen: list[Telemetry | Event] = []
        deadline = time.monotonic() + wall_for(device, 30)
        async for item in stream:
            expect(
                time.monotonic() < deadline,
                "a 7 s schedule (to 4 kPa and back) never came back to IDLE within 30 s of "
                "device time",
            )
            seen.append(item)
            if isinstance(item, StateChanged) and item.new == FirmwareState.IDLE:
                break
        spacing = _check_order(seen)
        batches = watched.telemetry_opcodes.count(TelemetryCode.BATCH)
        if spacing < BATCH_MS:  # two samples fit in one window, so some must share a payload
            expect(
                batches > 0,
                f"after SET_TELEMETRY {BATCH_MS} ms, with samples {spacing} ms apart, no "
                f"TELEMETRY_BATCH among {len(watched.telemetry_opcodes)} telemetry payloads",
            )
        await refused(device, SetTelemetry(batch_ms=0), Result.OK, "SET_TELEMETRY 0 ms")
        count = len(watched.telemetry_opcodes)
        deadline = time.monotonic() + wall_for(device, 5)
        async for item in stream:
            expect(
                time.monotonic() < deadline,
                "no telemetry within 5 s of device time after SET_TELEMETRY 0 ms",
            )
            if isinstance(item, Telemetry) and len(watched.telemetry_opcodes) > count + 1:
                break
        later = watched.telemetry_opcodes[count + 1 :]  # the first may be what was held
        expect(
            all(op == TelemetryCode.SAMPLE for op in later),
            "batches still arrive after SET_TELEMETRY 0",
        )
        samples = sum(isinstance(i, Telemetry) for i in seen)
        return (
            f"{samples} samples in {batches} batches, {spacing} ms apart, none lost or late "
            f"for an event; {TOO_LONG_MS} ms refused; single samples after 0"
        )


def _check_order(seen: list[Telemetry | Event]) -> int:
    """Samples rise evenly while RUNNING, and none arrives after an event it preceded."""
    samples = [i for i in seen if isinstance(i, Telemetry)]
    backwards = [(a.t_ms, b.t_ms) for a, b in pairwise(samples) if b.t_ms <= a.t_ms]
    expect(
        not backwards,
        f"t_ms not strictly increasing: {backwards[0][1]} ms after {backwards[0][0]} ms"
        if backwards
        else "",
    )
    running = [s.t_ms for s in samples if s.state == FirmwareState.RUNNING]
    gaps = {b - a for a, b in pairwise(running)}
    if len(running) < 4:
        raise CheckFailed(f"skip: {len(running)} samples while RUNNING, too sparse to judge")
    expect(
        len(gaps) == 1 and min(gaps) % 100 == 0,
        f"RUNNING samples not evenly spaced by a multiple of 100 ms (gaps {sorted(gaps)} ms): "
        "a sample was lost or reordered",
    )
    segment, vented = 0, False
    for item in seen:
        if isinstance(item, SegmentStarted):
            segment = max(segment, item.index)
        elif isinstance(item, VentStarted):
            vented = True
        elif isinstance(item, Telemetry) and item.state == FirmwareState.RUNNING:
            expect(
                not vented and item.segment_index >= segment,
                f"sample at t_ms {item.t_ms} (segment {item.segment_index}, RUNNING) arrived "
                "after an event that followed it",
            )
    return min(gaps)
