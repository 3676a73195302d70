"""The simulated firmware batches telemetry on request, losing and reordering nothing."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from acudevice.protocol import (
    Capabilities,
    Estop,
    Event,
    FaultRaised,
    Heartbeat,
    Hello,
    Info,
    InfoResponse,
    Message,
    Request,
    Result,
    SetTelemetry,
    Start,
    Telemetry,
    TelemetryBatch,
    VentStarted,
    decode,
    encode,
)
from simulator.client import DirectClient
from simulator.core.device import SimDevice
from tests.sim_helpers import SHORT

pytestmark = [pytest.mark.sim, pytest.mark.model]

Arrival = tuple[int, Message]
"""(device ms when the payload left the device, what it carried)."""


def _run(batch_ms: int, *, seed: int = 3, estop_at_s: float | None = None) -> list[Arrival]:
    """A short schedule from START to vented (or ESTOP), every payload with its device time."""
    c = DirectClient(SimDevice("wristband-p1", seed=seed))
    c.prepare(SHORT)
    assert c.result(SetTelemetry(batch_ms=batch_ms)) is Result.OK
    c.call(Start())
    out: list[Arrival] = []
    device = c.device
    start = device.now_ms
    end = start + 30_000
    seq = 100
    while device.now_ms < end:
        c.wall += (device.next_event_ms(end) - device.now_ms) / 1000.0
        device.step(c.wall, end)
        out += [(device.now_ms, decode(p).message) for p in device.take_output()]
        request: Request[Any] = Heartbeat()  # a host feeding the watchdog
        if estop_at_s is not None and device.now_ms - start >= estop_at_s * 1000:
            request, estop_at_s = Estop(), None
        seq = (seq + 1) & 0xFFFF
        answer = device.handle(encode(request, seq), c.wall)
        assert answer is not None and decode(answer).message.result is Result.OK  # type: ignore[attr-defined]
        out += [(device.now_ms, decode(p).message) for p in device.take_output()]
    return out


def _same_but_the_held_tail(batched: list[Arrival], single: list[Arrival], held_ms: int) -> None:
    """The batched run's host saw what the single run's saw, save samples still held."""
    got, want = _flat(batched), _flat(single)
    assert got == want[: len(got)], "every sample, every event, in the same order"
    end = single[-1][0]
    assert all(isinstance(m, Telemetry) and end - m.t_ms < held_ms for m in want[len(got) :])


def _flat(arrivals: list[Arrival]) -> list[Message]:
    """Samples and events in the order a host sees them, batches unpacked."""
    out: list[Message] = []
    for _, message in arrivals:
        out += message.samples if isinstance(message, TelemetryBatch) else [message]
    return out


def test_batched_output_is_the_same_samples_and_events_in_the_same_order() -> None:
    single = _run(0)
    batched = _run(1000)
    assert all(isinstance(m, Telemetry | Event) for _, m in single)
    batches = [m for _, m in batched if isinstance(m, TelemetryBatch)]
    assert len(batches) >= 20
    assert not any(isinstance(m, FaultRaised) for _, m in batched)
    assert max(len(b.samples) for b in batches) == 8
    assert len(batched) < len(single) / 3
    _same_but_the_held_tail(batched, single, 1000)
    samples = [m for m in _flat(batched) if isinstance(m, Telemetry)]
    assert all(b.t_ms > a.t_ms for a, b in itertools.pairwise(samples))


@pytest.mark.parametrize("batch_ms", [300, 1000, 5000])
def test_no_sample_is_held_longer_than_batch_ms_nor_more_than_eight(batch_ms: int) -> None:
    for sent_ms, message in _run(batch_ms):
        if isinstance(message, TelemetryBatch):
            assert 2 <= len(message.samples) <= 8
            assert sent_ms - message.samples[0].t_ms <= batch_ms
        if isinstance(message, Telemetry):
            assert sent_ms - message.t_ms <= batch_ms


def test_an_estop_sends_the_held_batch_before_the_vent_events() -> None:
    single = _run(0, estop_at_s=9.35)
    batched = _run(5000, estop_at_s=9.35)
    _same_but_the_held_tail(batched, single, 5000)
    vent = next(i for i, (_, m) in enumerate(batched) if isinstance(m, VentStarted))
    before = batched[vent - 1]
    assert isinstance(before[1], TelemetryBatch) and before[0] == batched[vent][0]
    assert before[1].samples[-1].t_ms <= batched[vent][0]


def test_refusals_and_the_capability_bit() -> None:
    c = DirectClient(SimDevice("vibepad-v1", seed=1))
    assert c.result(SetTelemetry(batch_ms=100)) is Result.HELLO_REQUIRED
    c.call(Hello())
    info = c.call(Info())
    assert isinstance(info, InfoResponse)
    assert Capabilities.TELEMETRY_BATCH in info.capabilities
    assert c.result(SetTelemetry(batch_ms=5001)) is Result.INVALID_PARAMETER
    assert c.result(SetTelemetry(batch_ms=5000)) is Result.OK


def test_hello_and_set_telemetry_zero_send_what_is_held_and_stop_batching() -> None:
    for stop in (Hello(), SetTelemetry(batch_ms=0)):
        device = SimDevice("wristband-p1", seed=2)
        for seq, request in enumerate((Hello(), SetTelemetry(batch_ms=5000), stop)):
            if seq == 2:
                assert device.advance(3.5, wall=0.0) == [], "quiet samples held up to 5 s"
            assert device.handle(encode(request, seq), 0.0) is not None
        flushed = [decode(p).message for p in device.take_output()]
        assert len(flushed) == 1 and isinstance(flushed[0], TelemetryBatch)
        times = [s.t_ms for s in flushed[0].samples]
        assert len(times) == 4 and {b - a for a, b in itertools.pairwise(times)} == {1000}
        after = [decode(p).message for p in device.advance(2.0, wall=0.0)]
        assert len(after) == 2 and all(isinstance(m, Telemetry) for m in after)
