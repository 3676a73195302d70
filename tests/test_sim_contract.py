"""Promises docs/protocol.md makes exactly: the cap at once, the ramp limit in INFO and
refused when exceeded, HELLO as a fresh session, continuity, counters, check order.

Requests go straight into a `SimDevice`; device time is stepped by the test.
"""

from __future__ import annotations

import pytest

from acudevice.protocol import (
    ActuatorCode,
    FirmwareState,
    Hello,
    Info,
    InfoResponse,
    LoadBegin,
    LoadSegment,
    PhaseCode,
    Result,
    SetLimits,
    SetTarget,
    ShapeCode,
    Start,
    Status,
    StatusResponse,
    decode,
    encode,
)
from simulator.client import ramp_hold_release, states
from tests.sim_helpers import client, loaded

pytestmark = [pytest.mark.sim, pytest.mark.model]

S = FirmwareState
RAMP_LIMIT = 2_000  # wristband-p1: 2 kPa/s


def _segment(
    index: int, to: int, duration_ms: int, *, start: int = 0, shape: ShapeCode = ShapeCode.LINEAR
) -> LoadSegment:
    return LoadSegment(
        index=index,
        duration_ms=duration_ms,
        from_level=start,
        to_level=to,
        shape=shape,
        phase=PhaseCode.RAMP,
        phase_index=0,
        repeat=0,
    )


def _begin(count: int, total_ms: int) -> LoadBegin:
    return LoadBegin(
        actuator=ActuatorCode.PRESSURE,
        segment_count=count,
        total_ms=total_ms,
        cap_level=10_000,
        frequency_dhz=0,
    )


def _status(c: object) -> StatusResponse:
    status = c.request(Status())  # type: ignore[attr-defined]
    assert isinstance(status, StatusResponse)
    return status


def test_lowering_the_cap_limits_the_target_before_the_ack_returns() -> None:
    c = loaded(ramp_hold_release(peak_level=8_000, ramp_ms=8_000, hold_ms=20_000, release_ms=8_000))
    c.call(Start())
    c.advance(10.0)
    assert _status(c).target_level == 8_000
    assert c.result(SetLimits(cap_level=4_000)) is Result.OK
    status = _status(c)  # no device time has passed since the Ack
    assert status.active_cap == 4_000
    assert status.target_level == 4_000


def test_info_reports_the_ramp_limit_and_a_steeper_segment_is_refused_not_slowed() -> None:
    c = client()
    info = c.request(Info())
    assert isinstance(info, InfoResponse) and info.ramp_limit_per_s == RAMP_LIMIT
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    # 8 000 Pa in 3 999 ms is just over 2 000 Pa/s.
    assert c.result(_begin(1, 3_999)) is Result.OK
    assert c.result(_segment(0, 8_000, 3_999)) is Result.INVALID_PARAMETER
    assert states(c.events)[-1] == ("IDLE", "IDLE", "LOAD_ABORTED")
    # Exactly at the limit is accepted.
    assert c.result(_begin(1, 4_000)) is Result.OK
    assert c.result(_segment(0, 8_000, 4_000)) is Result.OK
    assert c.state is S.LOADED


def test_a_set_target_rising_steeper_than_the_ramp_limit_is_refused_like_a_segment() -> None:
    """One rule for the ramp limit: what the band would have to slow, it refuses
    (INVALID_PARAMETER), whether a segment or a streamed target asks for it."""
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    # From rest a stream starts at 0: 8 000 Pa in 3 999 ms is just over 2 000 Pa/s.
    assert c.result(SetTarget(level=8_000, ramp_ms=3_999)) is Result.INVALID_PARAMETER
    assert c.result(SetTarget(level=1, ramp_ms=0)) is Result.INVALID_PARAMETER, "a step"
    assert c.state is S.IDLE and not c.events, "a refusal starts nothing"
    assert c.result(SetTarget(level=4_000, ramp_ms=2_000)) is Result.OK  # at the limit
    c.advance(2.5)
    assert _status(c).target_level == 4_000
    # While streaming, a rise is measured from the target STATUS reports.
    assert c.result(SetTarget(level=8_000, ramp_ms=1_999)) is Result.INVALID_PARAMETER
    c.advance(1.0)
    assert c.state is S.RUNNING and _status(c).target_level == 4_000, "the stream held on"
    assert c.result(SetTarget(level=8_000, ramp_ms=2_000)) is Result.OK
    c.advance(1.0)
    assert _status(c).target_level == pytest.approx(6_000, abs=30)
    # Falling is never refused, however steep: lowering is always allowed.
    assert c.result(SetTarget(level=0, ramp_ms=0)) is Result.OK
    assert _status(c).target_level == 0


def test_a_step_that_changes_the_level_is_refused_and_a_flat_step_is_a_hold() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    assert c.result(_begin(1, 10_000)) is Result.OK
    assert c.result(_segment(0, 1_000, 10_000, shape=ShapeCode.STEP)) is Result.INVALID_PARAMETER
    assert c.result(_begin(1, 10_000)) is Result.OK
    assert c.result(_segment(0, 0, 10_000, shape=ShapeCode.STEP)) is Result.OK


def test_segments_must_be_continuous_from_zero() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    assert c.result(_begin(1, 10_000)) is Result.OK
    assert c.result(_segment(0, 2_000, 10_000, start=1_000)) is Result.INVALID_PARAMETER
    assert c.result(_begin(2, 20_000)) is Result.OK
    assert c.result(_segment(0, 2_000, 10_000)) is Result.OK
    assert c.result(_segment(1, 0, 10_000, start=1_500)) is Result.INVALID_PARAMETER
    assert c.state is S.IDLE


def test_a_frequency_on_a_pressure_schedule_is_refused_as_a_bad_body() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    payload = bytearray(encode(_begin(1, 10_000), 0x0101))
    payload[14:16] = (1_000).to_bytes(2, "little")
    envelope = c.raw(bytes(payload))
    assert envelope is not None and envelope.message.result is Result.INVALID_PARAMETER
    assert c.result(_begin(1, 10_000)) is Result.OK


def test_hello_starts_a_fresh_session_whose_limits_must_be_set_again() -> None:
    c = loaded()
    assert c.call(Hello()).result is Result.OK
    assert c.state is S.IDLE, "a schedule loaded under an earlier HELLO is discarded"
    assert states(c.events)[-1] == ("LOADED", "IDLE", "HOST_REQUEST")
    assert c.result(_begin(1, 10_000)) is Result.LIMITS_NOT_SET
    assert c.result(SetLimits(cap_level=10_000)) is Result.OK
    assert c.result(_begin(1, 10_000)) is Result.OK
    c.call(Hello())
    assert states(c.events)[-1] == ("IDLE", "IDLE", "LOAD_ABORTED"), "an open upload too"
    assert c.result(_segment(0, 0, 10_000)) is Result.BAD_STATE


def test_a_hello_does_not_stop_a_running_session() -> None:
    c = loaded()
    c.call(Start())
    c.advance(1.0)
    c.call(Hello())
    assert c.state is S.RUNNING
    assert c.result(_begin(1, 10_000)) is Result.BAD_STATE, "state is checked before limits"


def test_the_active_cap_before_any_set_limits_is_the_hardware_maximum() -> None:
    c = client()
    assert _status(c).active_cap == 40_000


def test_counters_start_at_zero_at_boot_run_per_device_and_replies_before_hello_are_v1() -> None:
    from simulator.core.device import SimDevice

    device = SimDevice("wristband-p1")
    wall = 0.0

    def send(message: object, seq: int) -> int:
        response = device.handle(encode(message, seq), wall)  # type: ignore[arg-type]
        assert response is not None
        envelope = decode(response)
        assert envelope.seq == seq
        return envelope.version

    assert send(Status(), 1) == 1, "a reply before HELLO carries header version 1"
    device.step(wall)
    first = [decode(p) for p in device.take_output()]
    assert [(int(e.kind), e.seq) for e in first] == [(4, 0)], "telemetry counts from 0 at boot"
    send(Hello(), 2)
    send(SetLimits(cap_level=10_000), 3)
    send(_begin(1, 10_000), 4)
    send(_segment(0, 0, 10_000), 5)  # LOADED: event 0
    send(Hello(), 6)  # a new session: LOADED -> IDLE is event 1, not a fresh 0
    events = [decode(p) for p in device.take_output() if decode(p).kind == 3]
    assert [e.seq for e in events] == [0, 1]
