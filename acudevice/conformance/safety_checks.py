"""Conformance checks of the safety promises: caps, busy bands, vent and watchdog times,
the single-fault defences a model needs."""

from __future__ import annotations

import asyncio
import time

from acudevice.conformance.support import (
    CAP_TOLERANCE_LEVEL,
    VENT_TIME_TOLERANCE_S,
    WATCHDOG_TOLERANCE_S,
    CheckFailed,
    device_for,
    expect,
    level,
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
            await refused(
                device,
                begin,
                Result.LIMITS_NOT_SET,
                f"LOAD_BEGIN (cap {level(device, hw // 2)}) before any SET_LIMITS",
            )
        if hw < 0xFFFF:
            await refused(
                device,
                SetLimits(cap_level=hw + 1),
                Result.ABOVE_HARDWARE_MAX,
                f"SET_LIMITS {level(device, hw + 1)} (INFO's hardware maximum {level(device, hw)})",
            )
        await device.set_limits(hw // 4)
        after = f"after SET_LIMITS {level(device, hw // 4)}"
        await refused(
            device,
            begin,
            Result.ABOVE_CAP,
            f"LOAD_BEGIN with cap {level(device, hw // 2)} {after}",
        )
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
        await refused(
            device,
            segment,
            Result.ABOVE_CAP,
            f"LOAD_SEGMENT 0 to {level(device, hw // 2)} {after}",
        )
        status = await device.status()
        expect(
            status.state == FirmwareState.IDLE,
            f"STATUS said {status.state.name} after the refused requests, expected IDLE",
        )
        await refused(device, Start(), Result.BAD_STATE, "START with nothing loaded")
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
        await refused(device, first, Result.BAD_STATE, "a second LOAD_BEGIN while RUNNING")
        await refused(device, Start(), Result.BAD_STATE, "a second START while RUNNING")
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
        reached = 0
        async for item in stream:
            expect(
                time.monotonic() < deadline,
                f"a schedule ramping to {level(device, high)} in {ramp_ms / 1000:g} s never "
                f"got within 2 kPa of it: the highest reading was {level(device, reached)}",
            )
            if isinstance(item, Telemetry):
                reached = max(reached, item.measured_level)
                if item.measured_level >= high - 2_000:
                    break
        await device.estop()
        started: VentStarted | None = None
        async for item in stream:
            expect(
                time.monotonic() < deadline + wall_for(device, 2 * EMERGENCY_VENT_WITHIN_S),
                f"no VENT_FINISHED within {2 * EMERGENCY_VENT_WITHIN_S:g} s of device time "
                "after ESTOP"
                + ("" if started else " (and no VENT_STARTED with reason HOST_ESTOP)"),
            )
            if isinstance(item, VentStarted) and item.reason == Reason.HOST_ESTOP:
                started = item
            if isinstance(item, VentFinished) and started is not None:
                seconds = item.duration_ms / 1000
                limit_s = EMERGENCY_VENT_WITHIN_S + VENT_TIME_TOLERANCE_S
                expect(
                    item.measured_level < EMERGENCY_VENT_TO_KPA * 1000,
                    f"after ESTOP at {level(device, started.measured_level)}, VENT_FINISHED "
                    f"reported {level(device, item.measured_level)}, expected below "
                    f"{EMERGENCY_VENT_TO_KPA:g} kPa",
                )
                expect(
                    seconds <= limit_s,
                    f"after ESTOP, the vent from {level(device, started.measured_level)} to "
                    f"{level(device, item.measured_level)} took {seconds:.2f} s (VENT_FINISHED "
                    f"duration, device clock), expected at most {EMERGENCY_VENT_WITHIN_S:g} s "
                    f"(tolerance {VENT_TIME_TOLERANCE_S:g} s)",
                )
                return (
                    f"{started.measured_level / 1000:.1f} kPa to {item.measured_level / 1000:.1f} "
                    f"kPa in {seconds:.2f} s (limit {EMERGENCY_VENT_WITHIN_S:g} s, tolerance "
                    f"{VENT_TIME_TOLERANCE_S:g} s)"
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
        limit = (
            f"limit {WATCHDOG_TIMEOUT_S:g} s, tolerance {WATCHDOG_TOLERANCE_S:g} s for the "
            "link and the firmware's tick"
        )
        async for item in stream:
            waited = time.monotonic() - quiet_since
            expect(
                waited < WATCHDOG_TIMEOUT_S + 5,
                f"no FAULT_RAISED WATCHDOG or VENT_STARTED WATCHDOG {WATCHDOG_TIMEOUT_S + 5:g} s "
                f"after the last request (START; no heartbeats sent); expected within "
                f"{WATCHDOG_TIMEOUT_S:g} s",
            )
            if (isinstance(item, FaultRaised) and item.fault == FaultCode.WATCHDOG) or (
                isinstance(item, VentStarted) and item.reason == Reason.WATCHDOG
            ):
                expect(
                    waited <= WATCHDOG_TIMEOUT_S + WATCHDOG_TOLERANCE_S,
                    f"the watchdog vented {waited:.2f} s after the last request (START; no "
                    f"heartbeats sent, host clock), expected at most {WATCHDOG_TIMEOUT_S:g} s "
                    f"({limit})",
                )
                return (  # the fault is cleared by `settle` once the band has vented
                    f"vented {waited:.2f} s after the last request ({limit})"
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
        expect(
            isinstance(info, InfoResponse),
            f"INFO was answered with {type(info).__name__}, expected an InfoResponse",
        )
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
        before = await device.status()
        while before.target_level < 6_000:
            expect(
                time.monotonic() < deadline,
                f"a schedule ramping to 8 kPa under a 10 kPa cap: the target never reached "
                f"6 kPa (STATUS target {level(device, before.target_level)})",
            )
            await asyncio.sleep(0.05)
            before = await device.status()
        new_cap = 3_000
        await device.set_limits(new_cap)
        status = await device.status()
        await device.estop()
        while (await device.status()).state != FirmwareState.IDLE:  # leave it vented
            expect(
                time.monotonic() < deadline + wall_for(device, 15),
                "the band never came back to IDLE after ESTOP",
            )
            await asyncio.sleep(0.05)
        sent = (
            f"SET_LIMITS {level(device, new_cap)} sent while RUNNING with the target at "
            f"{level(device, before.target_level)}"
        )
        expect(
            status.active_cap == new_cap,
            f"{sent} was acknowledged, but STATUS then reported the cap as "
            f"{level(device, status.active_cap)}, expected {level(device, new_cap)}",
        )
        expect(
            status.target_level <= new_cap + CAP_TOLERANCE_LEVEL,
            f"{sent}: STATUS right after its Ack reported the target at "
            f"{level(device, status.target_level)}, above the new cap; expected at most "
            f"{level(device, new_cap)} at once",
        )
        return (
            f"target {level(device, before.target_level)} -> "
            f"{level(device, status.target_level)} right after SET_LIMITS {level(device, new_cap)}"
        )
