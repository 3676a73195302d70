"""The simulated firmware stopping, venting and raising its own alarms; streaming; vibration.

Requests go straight into a `SimDevice` (no transport); device time is stepped by the test.
"""

from __future__ import annotations

import itertools

import pytest

from acudevice.protocol import (
    NO_SEGMENT,
    ActuatorCode,
    Estop,
    FaultCode,
    FaultRaised,
    FirmwareState,
    Heartbeat,
    Hello,
    Info,
    InfoResponse,
    Pause,
    Reason,
    Result,
    SetLimits,
    SetTarget,
    Start,
    Status,
    StatusResponse,
    Stop,
    TelemetryFlags,
    VentFinished,
    VentStarted,
)
from simulator.client import ramp_hold_release, states
from tests.sim_helpers import NAUSEA, client, loaded

pytestmark = [pytest.mark.sim, pytest.mark.model]

S = FirmwareState


def test_stop_releases_gracefully_and_never_pumps() -> None:
    c = loaded()
    c.call(Start())
    c.advance(10.0)
    start_level = c.device.true_level
    c.call(Stop())
    assert c.state is S.VENTING
    levels = [c.device.true_level]
    pumped = False
    while c.state is S.VENTING:
        c.advance(0.01)
        levels.append(c.device.true_level)
        pumped |= c.device.firmware.actuation.drive > 0
    assert not pumped
    steps = [a - b for a, b in itertools.pairwise(levels)]
    assert max(steps[:100]) <= 2_000 * 0.01 + 60, "no faster than the rated release at first"
    assert len(levels) * 0.01 > start_level / 2_000 * 0.9
    assert c.state is S.IDLE and c.device.firmware.measured < 2_000
    c.advance(3.0)
    assert c.device.true_level < 1_000, "IDLE keeps the valve open"
    assert c.events_of(VentStarted)[-1].reason is Reason.HOST_STOP
    assert c.events_of(VentFinished)
    assert states(c.events)[-2:] == [
        ("RUNNING", "VENTING", "HOST_STOP"),
        ("VENTING", "IDLE", "VENT_DONE"),
    ]
    assert c.result(Start()) is Result.BAD_STATE, "the schedule is gone after a stop"


def test_stop_in_loaded_discards_the_schedule() -> None:
    c = loaded()
    c.call(Stop())
    assert c.state is S.IDLE
    assert states(c.events)[-1] == ("LOADED", "IDLE", "HOST_REQUEST")


def test_estop_vents_at_once_from_pressure() -> None:
    c = loaded(
        ramp_hold_release(peak_level=12_000, ramp_ms=12_000, hold_ms=30_000, release_ms=12_000)
    )
    c.call(Start())
    c.advance(15.0)
    assert c.device.true_level > 11_000
    c.call(Estop())
    assert c.state is S.VENTING
    took = c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)
    assert took < 2.7 * 2.0, "a dump, not a ramp"
    assert c.device.firmware.actuation.vent
    c.advance_until(lambda c: c.state is S.IDLE, limit_s=1)
    assert c.events_of(VentStarted)[-1].reason is Reason.HOST_ESTOP
    assert c.result(Estop()) is Result.OK


def test_estop_switches_a_graceful_stop_to_a_full_vent() -> None:
    c = loaded()
    c.call(Start())
    c.advance(10.0)
    c.call(Stop())
    c.advance(0.5)
    assert not c.device.firmware.actuation.vent
    c.call(Estop())
    c.advance(0.02)
    assert c.device.firmware.actuation.vent
    assert [e.reason for e in c.events_of(VentStarted)] == [Reason.HOST_STOP, Reason.HOST_ESTOP]


# ------------------------------------------------------------ the firmware's own alarms


def test_measured_above_cap_plus_tolerance_vents_and_faults() -> None:
    c = loaded()
    c.call(Start())
    c.advance(3.0)
    c.device.plant.level = 8_000 + 1_000 + 600  # squeezed: above cap + tolerance
    c.advance(0.02)
    assert c.state is S.FAULT
    [fault] = c.events_of(FaultRaised)
    assert fault.fault is FaultCode.OVER_PRESSURE
    assert not c.device.firmware.actuation.power
    c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)
    status = c.request(Status())
    assert isinstance(status, StatusResponse) and status.fault is FaultCode.OVER_PRESSURE
    c.advance(0.5)
    assert c.result(Stop()) is Result.OK, "vented: the cause is gone"
    assert c.state is S.IDLE


def test_watchdog_counts_wall_time_not_device_time() -> None:
    c = loaded(NAUSEA)
    c.call(Start())
    c.wall = 100.0
    c.call(Heartbeat())
    c.step(3000)  # 30 s of device time within one instant of wall time
    assert c.state is S.RUNNING
    c.wall = 103.05
    c.step()
    assert c.state is S.FAULT
    assert c.events_of(FaultRaised)[0].fault is FaultCode.WATCHDOG
    assert c.events_of(VentStarted)[0].reason is Reason.WATCHDOG
    assert states(c.events)[-1] == ("RUNNING", "FAULT", "WATCHDOG")


def test_watchdog_also_guards_a_paused_session_and_any_request_feeds_it() -> None:
    c = loaded()
    c.call(Start())
    c.call(Pause())
    for t in (1.0, 2.0, 3.0, 4.0, 5.0):
        c.wall = t
        c.call(Status())
        c.step()
    assert c.state is S.PAUSED
    c.wall = 8.1
    c.step()
    assert c.state is S.FAULT


def test_low_battery_refuses_a_start_and_faults_a_running_session() -> None:
    c = loaded(battery=6.5)
    assert c.result(Start()) is Result.LOW_BATTERY
    c = loaded(battery=8.0)
    c.call(Start())
    c.advance(3.0)
    c.device.battery.charge = 4.99
    c.advance(0.1)  # the supervisor's 100 ms tick
    assert c.state is S.FAULT
    assert c.events_of(FaultRaised)[0].fault is FaultCode.LOW_BATTERY
    c.advance(5.0)
    assert c.result(Stop()) is Result.FAULTED, "the battery is still flat"
    assert TelemetryFlags.LOW_BATTERY in c.telemetry[-1].flags


def test_info_reports_the_model_and_the_time_scale() -> None:
    c = client(time_scale=20)
    info = c.request(Info())
    assert isinstance(info, InfoResponse)
    assert info.model == "wristband-p1" and info.hardware_max_level == 40_000
    assert info.time_scale == 20 and info.battery_percent == 100
    status = c.request(Status())
    assert isinstance(status, StatusResponse)
    assert status.state is S.IDLE and status.segment_index == NO_SEGMENT


def test_streaming_follows_a_target_at_its_ramp_and_releases_at_once() -> None:
    c = client()
    c.call(Hello())
    c.call(SetLimits(cap_level=10_000))
    assert c.result(SetTarget(level=10_001, ramp_ms=3_000)) is Result.ABOVE_CAP
    assert c.result(SetTarget(level=40_001, ramp_ms=3_000)) is Result.ABOVE_HARDWARE_MAX
    assert c.result(SetTarget(level=6_000, ramp_ms=3_000)) is Result.OK  # 2 kPa/s: the limit
    assert c.state is S.RUNNING
    c.advance(1.0)
    assert c.device.firmware.target == pytest.approx(2_000, abs=30)
    c.advance(4.0)
    assert c.device.true_level == pytest.approx(6_000, abs=500)
    assert TelemetryFlags.STREAMING in c.telemetry[-1].flags
    assert c.telemetry[-1].segment_index == NO_SEGMENT
    c.call(SetTarget(level=0, ramp_ms=0))
    c.advance(0.02)
    assert c.device.firmware.target == 0, "releasing is never rate-limited"
    c.call(Stop())
    c.advance_until(lambda c: c.state is S.IDLE, limit_s=10)


def test_vibration_pad_follows_intensity_with_spin_up_lag() -> None:
    schedule = ramp_hold_release(
        peak_level=600,
        ramp_ms=2_000,
        hold_ms=3_000,
        release_ms=2_000,
        actuator=ActuatorCode.VIBRATION,
    )
    c = loaded(schedule, model="vibepad-v1")
    c.call(Start())
    c.advance(3.5)
    assert c.device.true_level == pytest.approx(600, abs=30)
    assert TelemetryFlags.MOTOR_ON in c.telemetry[-1].flags
    c.call(Estop())
    took = c.advance_until(lambda c: c.state is S.IDLE, limit_s=2)
    assert took < 0.5 and c.device.true_level < 30
