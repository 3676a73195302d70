"""Injected faults and hostile input: the firmware vents, faults, and never moves on garbage."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from acudevice.protocol import (
    Ack,
    ActuatorCode,
    Estop,
    FaultCode,
    FaultRaised,
    FirmwareState,
    Hello,
    Kind,
    LoadBegin,
    Opcode,
    ProtocolError,
    Reason,
    Result,
    SetLimits,
    SetTarget,
    Start,
    Status,
    StatusResponse,
    Stop,
    VentStarted,
    encode,
    try_decode,
)
from acudevice.protocol.loading import load_requests
from simulator.client import DirectClient, ramp_hold_release, states
from simulator.core.device import SimDevice
from simulator.core.errors import FaultSpecError
from simulator.core.faults import FaultPlan
from simulator.core.models import load_model

pytestmark = [pytest.mark.sim, pytest.mark.model]

S = FirmwareState
HOLD = ramp_hold_release(peak_level=12_000, ramp_ms=12_000, hold_ms=60_000, release_ms=12_000)


def running(*faults: str, cap: int = 20_000, **kwargs: object) -> DirectClient:
    c = DirectClient(SimDevice("wristband-p1", faults=FaultPlan.parse(faults), **kwargs))  # type: ignore[arg-type]
    c.prepare(HOLD, cap_level=cap)
    c.call(Start())
    return c


def fault_codes(c: DirectClient) -> list[FaultCode]:
    return [e.fault for e in c.events_of(FaultRaised)]


# ------------------------------------------------------------ device faults


def test_stuck_pump_is_caught_vented_with_power_cut_and_stays_latched() -> None:
    c = running("stuck-pump:20000")
    c.advance(19.9)
    assert c.state is S.RUNNING and not c.device.plant.drive_stuck
    c.advance_until(lambda c: c.state is S.FAULT, limit_s=5)
    assert fault_codes(c) == [FaultCode.STUCK_PUMP]
    assert c.device.true_level < 12_000 + 1_000 + 1_000, "caught before it got far"
    assert not c.device.firmware.actuation.power and c.device.firmware.actuation.vent
    assert c.events_of(VentStarted)[-1].reason is Reason.FAULT
    c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)
    c.advance(1.0)
    assert c.result(Stop()) is Result.FAULTED, "a stuck driver needs service, not a STOP"
    assert c.result(Start()) is Result.FAULTED
    assert c.state is S.FAULT


def test_stuck_pump_near_the_cap_is_caught_before_cap_plus_tolerance() -> None:
    c = running("stuck-pump:11000", cap=12_000)
    c.advance(10.9)
    assert c.state is S.RUNNING
    c.advance_until(lambda c: c.state is S.FAULT, limit_s=3)
    assert fault_codes(c)[0] in (FaultCode.OVER_PRESSURE, FaultCode.STUCK_PUMP)
    peak = max(t.measured_level for t in c.telemetry)
    assert peak <= 12_000 + 1_000 + 300
    c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)


def test_a_pump_sticking_during_a_graceful_stop_is_caught() -> None:
    c = running("stuck-pump:20000")
    c.advance(19.0)
    c.call(Stop())
    took = c.advance_until(lambda c: c.state is S.FAULT, limit_s=30)
    assert fault_codes(c) == [FaultCode.STUCK_PUMP]
    assert took < 3.0
    assert not c.device.firmware.actuation.power
    c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)


def test_dump_valve_against_a_stuck_pump_times_out() -> None:
    c = running()
    c.advance(14.0)
    c.device.plant.drive_stuck = True
    c.call(Estop())
    took = c.advance_until(lambda c: c.state is S.FAULT, limit_s=15)
    assert fault_codes(c) == [FaultCode.VENT_TIMEOUT]
    assert 10.0 <= took < 10.2, "the 10 s vent deadline"
    c.advance_until(lambda c: c.device.true_level < 2_000, limit_s=10)


def test_brownout_reboots_into_fault_forgetting_load_limits_and_hello() -> None:
    c = running("brownout:5000")
    c.advance(5.0)
    level_before = c.device.true_level
    assert level_before > 4_000
    c.advance(0.2)
    assert not c.device.powered
    assert c.raw(encode(Status(), 900)) is None, "no answer while the supply is down"
    c.advance(0.2)
    assert c.device.powered and c.device.reboots == 1
    assert c.state is S.FAULT
    assert fault_codes(c) == [FaultCode.BROWNOUT]
    assert states(c.events)[-1] == ("IDLE", "FAULT", "BOOT")
    assert c.device.true_level < level_before * 0.95, "unpowered, the dump valve opened"
    assert c.result(SetLimits(cap_level=10_000)) is Result.HELLO_REQUIRED
    c.call(Hello())
    c.advance_until(lambda c: c.device.firmware.measured < 2_000, limit_s=10)
    assert c.result(Stop()) is Result.OK
    assert c.state is S.IDLE
    assert c.result(Start()) is Result.BAD_STATE, "the schedule is gone"
    assert c.result(next(iter(load_requests(HOLD)))) is Result.LIMITS_NOT_SET


ONE_SENSOR = replace(load_model("wristband-p1"), agreement_level=None)
"""The band without its check sensor: what the self-tests alone must catch."""


def test_sensor_drift_is_caught_by_the_at_rest_self_test() -> None:
    c = DirectClient(SimDevice(ONE_SENSOR, faults=FaultPlan.parse(["drift:6"])))  # 0.1 kPa/s
    c.call(Hello())
    c.advance(9.0)
    assert c.state is S.IDLE, "within tolerance: the self-test waits one vent deadline"
    c.advance_until(lambda c: c.state is S.FAULT, limit_s=20)
    assert fault_codes(c) == [FaultCode.SENSOR_FAULT]
    assert c.result(Stop()) is Result.FAULTED, "the drift is still there"
    assert abs(c.device.true_level) < 1.0, "the sensor lies, the bladder is empty"


def test_negative_drift_is_implausible_at_once() -> None:
    c = DirectClient(SimDevice(ONE_SENSOR, faults=FaultPlan.parse(["drift:-30"])))
    c.advance_until(lambda c: c.state is S.FAULT, limit_s=5)
    assert fault_codes(c) == [FaultCode.SENSOR_FAULT]
    assert c.device.firmware.measured < -1_000


def test_fault_specs_parse_and_refuse_nonsense() -> None:
    plan = FaultPlan.parse(
        ["drop:5000", "corrupt:0.1", "duplicate:0.2", "delay:30", "stuck-pump", "drift:-0.5"]
    )
    assert plan.drop_after_ms == 5000 and plan.corrupt == 0.1 and plan.duplicate == 0.2
    assert plan.delay_ms == 30 and plan.stuck_after_ms == 0 and plan.drift_per_min == -0.5
    assert plan.link_faults and not FaultPlan.parse(["brownout:10"]).link_faults
    for bad, message in [
        ("explode", "unknown fault"),
        ("corrupt:2", "probability"),
        ("corrupt", "needs a probability"),
        ("drop", "needs a time"),
        ("delay:-5", "negative"),
        ("drift:fast", "number"),
    ]:
        with pytest.raises(FaultSpecError, match=message):
            FaultPlan.parse([bad])
    with pytest.raises(FaultSpecError, match="twice"):
        FaultPlan.parse(["drop:1", "drop:2"])


# ------------------------------------------------------------ hostile input


def test_undecodable_requests_are_answered_by_their_header_and_change_nothing() -> None:
    c = DirectClient(SimDevice())
    c.call(Hello())
    unknown = bytes([1, Kind.REQUEST, 0x34, 0x12, 0x7E])
    env = c.raw(unknown)
    assert env is not None and env.seq == 0x1234 and env.opcode == 0x7E
    assert env.message == Ack(opcode=0x7E, result=Result.UNSUPPORTED_OPCODE)
    foreign = bytes([9, Kind.REQUEST, 5, 0, Opcode.START])
    env = c.raw(foreign)
    assert env is not None and env.message == Ack(opcode=6, result=Result.VERSION_UNSUPPORTED)
    truncated = encode(SetTarget(level=5_000, ramp_ms=0), 7)[:-2]
    env = c.raw(truncated)
    assert env is not None and env.message == Ack(opcode=0x0D, result=Result.INVALID_PARAMETER)
    assert c.raw(b"\x01\x01\x00") is None, "no readable header: dropped"
    assert c.raw(encode(Ack(opcode=6, result=Result.OK), 3)) is None, "not a request: dropped"
    assert c.state is S.IDLE and not c.events


def test_a_duplicated_request_is_answered_again_but_executed_once() -> None:
    c = DirectClient(SimDevice())
    c.call(Hello())
    c.call(SetLimits(cap_level=20_000))
    payloads = [encode(r, 100 + i) for i, r in enumerate(load_requests(HOLD))]
    for payload in payloads:
        first, again = c.raw(payload), c.raw(payload)
        assert first is not None and first == again and first.message.result is Result.OK  # type: ignore[attr-defined]
    assert c.state is S.LOADED, "a repeated segment did not abort the load"
    start = encode(Start(), 200)
    c.raw(start)
    c.advance(1.0, heartbeat_s=None)
    env = c.raw(start)
    assert env is not None and env.message.result is Result.OK  # type: ignore[attr-defined]
    assert [e for e in states(c.events) if e[1] == "RUNNING"] == [
        ("LOADED", "RUNNING", "HOST_REQUEST")
    ]


def _loaded_device() -> DirectClient:
    c = DirectClient(SimDevice(seed=5))
    c.call(Hello())
    c.call(SetLimits(cap_level=20_000))
    for request in load_requests(HOLD):
        c.call(request)
    return c


VALID = [
    encode(m, 42)
    for m in (
        Start(),
        SetTarget(level=9_000, ramp_ms=5_000),  # within the ramp limit: accepted as sent
        SetLimits(cap_level=30_000),
        LoadBegin(
            actuator=ActuatorCode.PRESSURE,
            segment_count=1,
            total_ms=1000,
            cap_level=100,
            frequency_dhz=0,
        ),
    )
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=40),
        st.tuples(st.sampled_from(VALID), st.integers(0, 159), st.integers(1, 255)).map(
            lambda t: bytes(b ^ (t[2] if i == t[1] % len(t[0]) else 0) for i, b in enumerate(t[0]))
        ),
        st.tuples(st.sampled_from(VALID), st.integers(1, 8)).map(lambda t: t[0][: -t[1]]),
        st.tuples(st.sampled_from(VALID), st.binary(min_size=1, max_size=4)).map(
            lambda t: t[0] + t[1]
        ),
    )
)
def test_malformed_payloads_never_move_the_actuator(payload: bytes) -> None:
    assume(isinstance(try_decode(payload), ProtocolError))
    c = _loaded_device()
    before = c.device.firmware.state
    env = c.raw(payload)
    c.advance(0.5)
    assert c.device.firmware.state is before is S.LOADED
    assert c.device.true_level < 1.0
    assert c.device.firmware.actuation.drive == 0
    assert c.device.firmware.active_cap == 20_000
    if env is not None:
        assert isinstance(env.message, Ack) and env.message.result is not Result.OK
        assert env.message.result in (
            Result.UNSUPPORTED_OPCODE,
            Result.VERSION_UNSUPPORTED,
            Result.INVALID_PARAMETER,
        )
    status = c.request(Status())
    assert isinstance(status, StatusResponse) and status.state is S.LOADED


def _twin_running(seed: int) -> DirectClient:
    c = DirectClient(SimDevice(seed=seed))
    c.prepare(HOLD)
    c.call(Start())
    c.advance(2.0)
    return c


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=30), min_size=1, max_size=4), st.integers(0, 9))
def test_garbage_mid_session_changes_nothing_compared_with_a_twin(
    payloads: list[bytes], seed: int
) -> None:
    assume(all(isinstance(try_decode(p), ProtocolError) for p in payloads))
    fed, twin = _twin_running(seed), _twin_running(seed)
    for payload in payloads:
        fed.raw(payload)
    fed.advance(1.0)
    twin.advance(1.0)
    assert fed.device.true_level == twin.device.true_level
    assert fed.device.firmware.target == twin.device.firmware.target
    assert fed.state is twin.state is S.RUNNING
    assert fed.telemetry == twin.telemetry
