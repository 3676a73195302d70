"""Batched telemetry over real links: full batches over BLE, whole batches at speed=max."""

from __future__ import annotations

import itertools

import pytest

from acudevice.conformance.support import pressure_schedule, start_schedule
from acudevice.conformance.telemetry import _Watched
from acudevice.device import Device
from acudevice.device.addresses import open_device_transport
from acudevice.protocol import (
    Event,
    FirmwareState,
    SegmentStarted,
    StateChanged,
    Telemetry,
    TelemetryBatch,
    TelemetryCode,
    decode,
)
from tests.ble_helpers import ble_rig
from tests.sim_server import serve

pytestmark = pytest.mark.wire

SCHEDULE = pressure_schedule([(2_000, 4_000), (4_000, 4_000), (2_000, 0)], 10_000)


async def _session(url: str, batch_ms: int) -> tuple[_Watched, list[Telemetry | Event]]:
    """Run SCHEDULE to IDLE with batching on; the payloads seen and the host's stream."""
    watched = _Watched(open_device_transport(url))
    seen: list[Telemetry | Event] = []
    async with Device(watched, heartbeat_interval_s=1.0) as device:
        await device.set_telemetry_batch(batch_ms)
        stream = device.stream()
        await start_schedule(device, SCHEDULE)
        async for item in stream:
            seen.append(item)
            if isinstance(item, StateChanged) and item.new == FirmwareState.IDLE:
                break
    return watched, seen


def _in_order(seen: list[Telemetry | Event]) -> None:
    samples = [i for i in seen if isinstance(i, Telemetry)]
    assert all(b.t_ms > a.t_ms for a, b in itertools.pairwise(samples))
    segment = 0
    for item in seen:  # no sample taken before a segment began arrives after its event
        if isinstance(item, SegmentStarted):
            segment = item.index
        elif isinstance(item, Telemetry) and item.state == FirmwareState.RUNNING:
            assert item.segment_index >= segment


@pytest.mark.looptime
async def test_a_full_126_byte_batch_crosses_ble_in_segments() -> None:
    async with ble_rig("sim://?speed=max&seed=7") as rig:
        await rig.pair()
        watched, seen = await _session(rig.url(), 5_000)
    sizes = [len(p) for p in watched.telemetry if p[4] == TelemetryCode.BATCH]
    assert 126 in sizes, sizes
    _in_order(seen)
    running = [
        s.t_ms for s in seen if isinstance(s, Telemetry) and s.state == FirmwareState.RUNNING
    ]
    assert {b - a for a, b in itertools.pairwise(running)} == {100}, "every sample, no loss"


async def test_at_speed_max_a_byte_stream_skips_whole_batches_never_part_of_one() -> None:
    with serve("--tcp", "0", "--speed", "max") as url:
        watched, seen = await _session(url, 1_000)
    batches = [decode(p).message for p in watched.telemetry if p[4] == TelemetryCode.BATCH]
    assert batches
    for batch in batches:
        assert isinstance(batch, TelemetryBatch)
        times = [s.t_ms for s in batch.samples]
        running = all(s.state == FirmwareState.RUNNING for s in batch.samples)
        if running:  # a batch arrives whole: its samples are 100 ms apart, none missing
            assert {b - a for a, b in itertools.pairwise(times)} <= {100}
    _in_order(seen)
