"""Conformance checks of the safety promises: caps, busy bands, vent and watchdog times,
the single-fault defences a model needs."""

from __future__ import annotations

import asyncio
import time

from acudevice.conformance.support import (
    CheckFailed,
    device_for,
    expect,
    pressure_schedule,
    refused,
    require_pressure,
    start_schedule,
    wall_for,
)
from acudevice.device.loading import schedule_load_requests
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.protocol import (
    ActuatorCode,
    FaultCode,
    FirmwareState,
    Info,
    InfoResponse,
    LoadBegin,
    LoadSegment,
    PhaseCode,
    Reason,
    Result,
    SafetyCapabilities,
    SetLimits,
    ShapeCode,
    Start,
)
from acudevice.protocol.messages import FaultRaised, Telemetry, VentFinished, VentStarted
from acudevice.safety.rules import (
    EMERGENCY_VENT_TO_KPA,
    EMERGENCY_VENT_WITHIN_S,
    WATCHDOG_TIMEOUT_S,
)

WATCHDOG_MARGIN_S = 0.75


async def check_cap_refusals(url: str) -> str:
    async with device_for(url) as device:
        hw = device.info.hardware_max_level
        actuator = (
            ActuatorCode.PRESSURE
            if device.info.device_model.actuator == "pressure"
            else ActuatorCode.VIBRATION
        )
        begin = LoadBegin(
            actuator=actuator,
            segment_count=1,
            total_ms=1000,
            cap_level=hw // 2,
            frequency_dhz=0 if actuator is ActuatorCode.PRESSURE else 1200,
        )
        # On serial an earlier host's SET_LIMITS holds since boot (protocol.md section 8):
        # LIMITS_NOT_SET can then not be shown, which the detail says.
        earlier = url.startswith("serial:") and (await device.status()).active_cap < hw
        if not earlier:
            await refused(device, begin, Result.LIMITS_NOT_SET)
        if hw < 0xFFFF:
            await refused(device, SetLimits(cap_level=hw + 1), Result.ABOVE_HARDWARE_MAX)
        await device.set_limits(hw // 4)
        await refused(device, begin, Result.ABOVE_CAP)
        await device.link.request(begin.model_copy(update={"cap_level": hw // 4}), deadline_s=2.0)
        segment = LoadSegment(
            index=0,
            duration_ms=1000,
            from_level=0,
            to_level=hw // 2,
            shape=ShapeCode.LINEAR,
            phase=PhaseCode.RAMP,
            phase_index=0,
            repeat=0,
        )
        await refused(device, segment, Result.ABOVE_CAP)
        status = await device.status()
        expect(status.state == FirmwareState.IDLE, f"state {status.state.name} after refusals")
        await refused(device, Start(), Result.BAD_STATE)
        if earlier:
            return (
                "ABOVE_HARDWARE_MAX, ABOVE_CAP (begin and segment); stayed IDLE; an earlier "
                "host's limits still held, so LIMITS_NOT_SET was not shown (run first after boot)"
            )
        return "LIMITS_NOT_SET, ABOVE_HARDWARE_MAX, ABOVE_CAP (begin and segment); stayed IDLE"


async def check_busy_device_refuses_a_second_program(url: str) -> str:
    async with device_for(url) as device:
        require_pressure(device)
        schedule = pressure_schedule([(10_000, 4_000), (10_000, 4_000), (10_000, 0)], 10_000)
        await start_schedule(device, schedule)
        first, *_ = schedule_load_requests(schedule)
        await refused(device, first, Result.BAD_STATE)
        await refused(device, Start(), Result.BAD_STATE)
        await device.estop()
        return "LOAD_BEGIN and START refused while RUNNING"


async def check_estop_vent_time(url: str) -> str:
    async with device_for(url) as device:
        model = device.info.device_model
        if model.actuator != "pressure":
            raise CheckFailed("skip: pressure devices only")
        hw = device.info.hardware_max_level
        high = hw - 1_000
        ramp_ms = int(high / model.max_ramp_level_per_s * 1000) + 1_000
        schedule = pressure_schedule([(ramp_ms, high), (60_000, high), (30_000, 0)], hw)
        stream = device.stream()
        await start_schedule(device, schedule)
        deadline = time.monotonic() + wall_for(device, ramp_ms / 1000 + 10)
        async for item in stream:
            expect(time.monotonic() < deadline, f"never reached {high} Pa")
            if isinstance(item, Telemetry) and item.measured_level >= high - 2_000:
                break
        await device.estop()
        started: VentStarted | None = None
        async for item in stream:
            expect(
                time.monotonic() < deadline + wall_for(device, 2 * EMERGENCY_VENT_WITHIN_S),
                "no VentFinished after ESTOP",
            )
            if isinstance(item, VentStarted) and item.reason == Reason.HOST_ESTOP:
                started = item
            if isinstance(item, VentFinished) and started is not None:
                seconds = item.duration_ms / 1000
                expect(
                    item.measured_level < EMERGENCY_VENT_TO_KPA * 1000,
                    f"vent finished at {item.measured_level} Pa",
                )
                expect(
                    seconds <= EMERGENCY_VENT_WITHIN_S,
                    f"vent from {started.measured_level} Pa took {seconds:.1f} s",
                )
                return (
                    f"{started.measured_level / 1000:.1f} kPa to {item.measured_level / 1000:.1f} "
                    f"kPa in {seconds:.2f} s (limit {EMERGENCY_VENT_WITHIN_S:g} s)"
                )
        raise CheckFailed("the event stream ended")


async def check_watchdog_vents_without_heartbeats(url: str) -> str:
    async with device_for(url, heartbeats=False) as device:
        if device.info.time_scale == 0:
            # Unbounded device time ends any schedule before 3 s of wall silence can pass.
            raise CheckFailed("skip: the device runs as fast as it can (time_scale 0); use a speed")
        schedule = (
            pressure_schedule([(10_000, 5_000), (170_000, 5_000), (10_000, 0)], 10_000)
            if device.info.device_model.actuator == "pressure"
            else None
        )
        if schedule is None:
            raise CheckFailed("skip: pressure devices only")
        stream = device.stream()
        await start_schedule(device, schedule)
        quiet_since = time.monotonic()
        async for item in stream:
            waited = time.monotonic() - quiet_since
            expect(waited < WATCHDOG_TIMEOUT_S + 5, "no watchdog vent after 8 s of silence")
            if (isinstance(item, FaultRaised) and item.fault == FaultCode.WATCHDOG) or (
                isinstance(item, VentStarted) and item.reason == Reason.WATCHDOG
            ):
                expect(
                    waited <= WATCHDOG_TIMEOUT_S + WATCHDOG_MARGIN_S,
                    f"vented {waited:.2f} s after the last request",
                )
                return (  # the fault is cleared by `settle` once the band has vented
                    f"vented {waited:.2f} s after the last request (limit {WATCHDOG_TIMEOUT_S:g} s)"
                )
        raise CheckFailed("the event stream ended")


def required_safety(model: PressureDevice | VibrationDevice) -> SafetyCapabilities:
    """The single-fault defences a device of this model must run (docs/safety.md)."""
    bits = (
        SafetyCapabilities.ZERO_CHECK
        | SafetyCapabilities.OVER_LEVEL_CUTOFF
        | SafetyCapabilities.STUCK_DRIVE_CHECK
    )
    if isinstance(model, PressureDevice):
        bits |= SafetyCapabilities.STUCK_VALVE_CHECK
        if model.sensor_agreement_kpa is not None:
            bits |= SafetyCapabilities.DUAL_SENSOR
    return bits


async def check_single_fault_defences(url: str) -> str:
    async with device_for(url) as device:
        info = await device.link.request(Info(), deadline_s=2.0)
        expect(isinstance(info, InfoResponse), f"INFO answered {info!r}")
        assert isinstance(info, InfoResponse)
        wanted = required_safety(device.info.device_model)
        missing = wanted & ~info.safety
        expect(
            not missing,
            f"INFO safety lacks {'+'.join(b.name or '' for b in missing)} "
            f"that model {info.model} requires",
        )
        return "+".join(b.name or "" for b in info.safety) or "none required"


async def check_lower_cap_limits_the_target_at_once(url: str) -> str:
    async with device_for(url) as device:
        require_pressure(device)
        schedule = pressure_schedule([(4_000, 8_000), (60_000, 8_000), (4_000, 0)], 10_000)
        await start_schedule(device, schedule)
        deadline = time.monotonic() + wall_for(device, 10)
        while (await device.status()).target_level < 6_000:
            expect(time.monotonic() < deadline, "the target never reached 6 kPa")
            await asyncio.sleep(0.05)
        await device.set_limits(3_000)
        status = await device.status()
        await device.estop()
        while (await device.status()).state != FirmwareState.IDLE:  # leave it vented
            expect(time.monotonic() < deadline + wall_for(device, 15), "never vented")
            await asyncio.sleep(0.05)
        expect(
            status.target_level <= status.active_cap == 3_000,
            f"target {status.target_level} above the new cap {status.active_cap} after its Ack",
        )
        return f"target {status.target_level} Pa right after SET_LIMITS 3000"
