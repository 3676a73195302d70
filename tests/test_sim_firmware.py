"""The simulated firmware: following a schedule, telemetry, pause, refusals and the cap.

Requests go straight into a `SimDevice` (no transport); device time is stepped by the test.
"""

from __future__ import annotations

import itertools

import pytest

from acudevice.device.loading import from_wire
from acudevice.protocol import (
    ActuatorCode,
    Estop,
    FaultRaised,
    FirmwareState,
    Heartbeat,
    Hello,
    Info,
    LoadBegin,
    LoadSegment,
    Pause,
    PhaseCode,
    Result,
    Resume,
    ScheduleDone,
    SegmentStarted,
    SetLimits,
    SetTarget,
    ShapeCode,
    Start,
    Status,
    StatusResponse,
    Stop,
    TelemetryFlags,
)
from simulator.client import ramp_hold_release, states
from tests.sim_helpers import NAUSEA, SHORT, client, loaded

pytestmark = [pytest.mark.sim, pytest.mark.model]

S = FirmwareState


def segment(index: int, level: int, duration_ms: int = 10_000, start: int = 0) -> LoadSegment:
    return LoadSegment(
        index=index,
        duration_ms=duration_ms,
        from_level=start,
        to_level=level,
        shape=ShapeCode.LINEAR,
        phase=PhaseCode.RAMP,
        phase_index=0,
        repeat=0,
    )


def begin(count: int = 1, total_ms: int = 10_000, cap: int = 10_000) -> LoadBegin:
    return LoadBegin(
        actuator=ActuatorCode.PRESSURE,
        segment_count=count,
        total_ms=total_ms,
        cap_level=cap,
        frequency_dhz=0,
    )


# ------------------------------------------------------------ following a schedule


def test_controller_follows_the_nausea_shape_within_the_sensor_tolerance() -> None:
    c = loaded(NAUSEA)
    plan = from_wire(NAUSEA)
    c.call(Start())
    errors: list[float] = []
    while c.state is S.RUNNING:
        fw = c.device.firmware
        planned = plan.level_at(fw.elapsed_ms)
        c.advance(0.01)
        seg = plan.segment_at(fw.elapsed_ms)
        if seg is not None and fw.elapsed_ms - seg.start_ms > 2_000:
            errors.append(abs(c.device.true_level - planned))
    assert len(errors) > 40_000
    assert max(errors) < 1_000, "true pressure within the 1 kPa sensor tolerance of the plan"
    assert sum(errors) / len(errors) < 250
    assert [e.index for e in c.events_of(SegmentStarted)] == list(range(12))
    assert c.events_of(ScheduleDone)[0].elapsed_ms == NAUSEA.total_ms
    c.advance_until(lambda c: c.state is S.IDLE, limit_s=10)
    assert states(c.events)[-3:] == [
        ("LOADED", "RUNNING", "HOST_REQUEST"),
        ("RUNNING", "VENTING", "SCHEDULE_DONE"),
        ("VENTING", "IDLE", "VENT_DONE"),
    ]
    assert c.device.true_level < 2_000


def test_telemetry_every_100_ms_while_running_and_every_second_when_idle() -> None:
    c = client()
    c.advance(5.0)
    idle_times = [t.t_ms for t in c.telemetry]
    assert [b - a for a, b in itertools.pairwise(idle_times)] == [1000] * 4
    c.prepare(SHORT)
    c.call(Start())
    c.telemetry.clear()
    c.advance(2.0)
    running = [t for t in c.telemetry if t.state is S.RUNNING]
    assert len(running) == 20
    assert {b.t_ms - a.t_ms for a, b in itertools.pairwise(running)} == {100}
    assert all(TelemetryFlags.PUMP_ON in t.flags for t in running[2:])
    assert all(t.segment_index == 0 for t in running)
    last = c.telemetry[-1]
    assert last.t_ms == 7_000 and last.target_level == 2_000, "the plan at 2 s: a 1 kPa/s ramp"


def test_telemetry_is_spaced_for_a_fast_clock() -> None:
    c = client(telemetry_factor=4)
    c.prepare(SHORT)
    c.call(Start())
    c.telemetry.clear()
    c.advance(2.0)
    assert len(c.telemetry) == 5


def test_pause_holds_the_level_and_resume_continues_the_clock() -> None:
    c = loaded()
    c.call(Start())
    c.advance(4.0)
    c.call(Pause())
    held = c.device.firmware.target
    elapsed = c.device.firmware.elapsed_ms
    c.advance(5.0)
    assert c.state is S.PAUSED
    assert c.device.firmware.elapsed_ms == elapsed
    assert c.device.true_level == pytest.approx(held, abs=400)
    assert c.result(Pause()) is Result.BAD_STATE
    c.call(Resume())
    c.advance(1.0)
    assert c.device.firmware.elapsed_ms == elapsed + 1_000
    assert c.result(Resume()) is Result.BAD_STATE


# ------------------------------------------------------------ refusals and the cap


def test_requests_before_hello_are_refused_except_the_safe_ones() -> None:
    c = client()
    assert c.result(SetLimits(cap_level=10_000)) is Result.HELLO_REQUIRED
    assert c.result(begin()) is Result.HELLO_REQUIRED
    assert c.result(SetTarget(level=1_000, ramp_ms=1_000)) is Result.HELLO_REQUIRED
    for allowed in (Info(), Status(), Heartbeat(), Stop(), Estop()):
        assert c.result(allowed) is Result.OK
    assert c.call(Hello()).result is Result.OK
    assert c.result(SetLimits(cap_level=10_000)) is Result.OK


def test_limits_must_come_before_a_load_and_never_above_the_hardware() -> None:
    c = client()
    c.call(Hello())
    assert c.result(begin()) is Result.LIMITS_NOT_SET
    assert c.result(SetTarget(level=1_000, ramp_ms=0)) is Result.LIMITS_NOT_SET
    assert c.result(SetLimits(cap_level=40_001)) is Result.ABOVE_HARDWARE_MAX
    assert c.result(begin()) is Result.LIMITS_NOT_SET, "a refused SET_LIMITS sets nothing"
    assert c.result(SetLimits(cap_level=10_000)) is Result.OK
    status = c.request(Status())
    assert isinstance(status, StatusResponse) and status.active_cap == 10_000


def test_load_is_refused_above_the_active_cap_and_a_refusal_aborts_it() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    assert c.result(begin(cap=10_001)) is Result.ABOVE_CAP
    assert c.result(begin(cap=40_001)) is Result.ABOVE_HARDWARE_MAX
    assert c.result(begin(count=2, total_ms=20_000)) is Result.OK
    assert c.result(segment(0, 10_001)) is Result.ABOVE_CAP
    assert states(c.events)[-1] == ("IDLE", "IDLE", "LOAD_ABORTED")
    assert c.result(segment(0, 5_000)) is Result.BAD_STATE, "aborted: a new LOAD_BEGIN needed"
    assert c.result(begin(count=2, total_ms=20_000)) is Result.OK
    assert c.result(segment(0, 45_000)) is Result.ABOVE_HARDWARE_MAX
    assert c.result(begin(count=2, total_ms=20_000)) is Result.OK
    assert c.result(segment(1, 5_000)) is Result.INVALID_PARAMETER, "out of order"
    assert c.result(begin(count=2, total_ms=25_000)) is Result.OK
    assert c.result(segment(0, 5_000)) is Result.OK
    assert c.result(segment(1, 0, start=5_000)) is Result.INVALID_PARAMETER, "wrong total"
    assert c.state is S.IDLE


def test_start_needs_a_complete_load_and_a_running_device_refuses_another() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    assert c.result(Start()) is Result.BAD_STATE
    c.call(begin(count=2, total_ms=20_000))
    c.call(segment(0, 5_000))
    assert c.result(Start()) is Result.BAD_STATE, "half a schedule never starts"
    c.call(segment(1, 0, start=5_000))
    assert c.state is S.LOADED
    c.call(Start())
    c.advance(1.0)
    assert c.result(Start()) is Result.BAD_STATE
    assert c.result(begin()) is Result.BAD_STATE
    assert c.result(SetTarget(level=1_000, ramp_ms=1_000)) is Result.BAD_STATE
    assert c.state is S.RUNNING and c.device.firmware.segment_index == 0


def test_the_cap_only_goes_down_in_a_session_and_a_lower_cap_applies_at_once() -> None:
    c = loaded(ramp_hold_release(peak_level=8_000, ramp_ms=8_000, hold_ms=20_000, release_ms=8_000))
    assert c.result(SetLimits(cap_level=8_001)) is Result.BAD_STATE
    c.call(Start())
    c.advance(12.0)
    assert c.device.true_level > 7_500
    assert c.result(SetLimits(cap_level=9_000)) is Result.BAD_STATE
    assert c.result(SetLimits(cap_level=4_000)) is Result.OK
    c.advance(0.02)
    assert c.device.firmware.target == 4_000
    c.advance(6.0)
    assert c.state is S.RUNNING, "lowering the cap is a release, not a fault"
    assert c.device.true_level == pytest.approx(4_000, abs=600)
    assert not c.events_of(FaultRaised)
