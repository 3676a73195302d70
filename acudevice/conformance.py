"""Conformance: drive any device URL through the promises of docs/protocol.md.

Each check opens its own connection and starts from a band at rest (vented, no latched
fault), so one check cannot leave state for the next; the band is left at rest at the end. Timings that the protocol promises (vent time, watchdog) are
measured and reported, not just passed or failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from acudevice.conformance_support import (
    CheckFailed,
    device_for,
    expect,
    load_schedule,
    pressure_schedule,
    refused,
    result_of,
    wall_for,
)
from acudevice.conformance_telemetry import check_telemetry_batches
from acudevice.device import Device, DeviceError
from acudevice.device.addresses import open_device_transport
from acudevice.device.clearing import vent_and_clear
from acudevice.device.loading import schedule_load_requests
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.protocol import (
    PROTOCOL_VERSION,
    Ack,
    ActuatorCode,
    Estop,
    FaultCode,
    FirmwareState,
    Heartbeat,
    Hello,
    HelloResponse,
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
    Stop,
    encode,
    frame,
)
from acudevice.protocol.messages import FaultRaised, Telemetry, VentFinished, VentStarted
from acudevice.safety.rules import (
    EMERGENCY_VENT_TO_KPA,
    EMERGENCY_VENT_WITHIN_S,
    WATCHDOG_TIMEOUT_S,
)

WATCHDOG_MARGIN_S = 0.75
UNKNOWN_OPCODE = 0x7E


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # pass, fail, skip
    detail: str


async def check_version_negotiation(url: str) -> str:
    async with device_for(url) as device:
        expect(device.info.protocol_version == PROTOCOL_VERSION, "INFO reports another version")
        response = await device.link.request(
            Hello(min_version=100, max_version=127), deadline_s=2.0
        )
        expect(isinstance(response, HelloResponse), "HELLO was not answered with a HelloResponse")
        assert isinstance(response, HelloResponse)
        expect(
            response.result == Result.VERSION_UNSUPPORTED and response.version == 0,
            f"HELLO 100..127 answered {response.result.name} version {response.version}",
        )
        return (
            f"v{device.info.protocol_version}; 100..127 refused with the device's range "
            f"{response.device_min_version}..{response.device_max_version}"
        )


async def check_unknown_opcode(url: str) -> str:
    async with device_for(url) as device:
        seq = 0x4242
        payload = bytes([PROTOCOL_VERSION, 1, seq & 0xFF, seq >> 8, UNKNOWN_OPCODE])
        response = await device.link.exchange_raw(payload, seq=seq, deadline_s=2.0)
        expect(
            isinstance(response, Ack) and response.opcode == UNKNOWN_OPCODE,
            f"answered {response!r}, expected an Ack echoing opcode 0x{UNKNOWN_OPCODE:02X}",
        )
        expect(response.result == Result.UNSUPPORTED_OPCODE, f"result {result_of(response).name}")
        return "UNSUPPORTED_OPCODE with the same seq and opcode"


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
        if device.info.device_model.actuator != "pressure":
            raise CheckFailed("skip: pressure devices only")
        schedule = pressure_schedule([(10_000, 4_000), (10_000, 4_000), (10_000, 0)], 10_000)
        await load_schedule(device, schedule)
        await device.start()
        first, *_ = schedule_load_requests(schedule)
        await refused(device, first, Result.BAD_STATE)
        await refused(device, Start(), Result.BAD_STATE)
        await device.estop()
        return "LOAD_BEGIN and START refused while RUNNING"


async def check_stop_and_estop_before_hello(url: str) -> str:
    transport = open_device_transport(url)
    device = Device(transport, heartbeat_interval_s=None)
    await device.link.open()
    try:
        for message in (Stop(), Estop()):
            response = await device.link.request(message, deadline_s=2.0)
            expect(
                response.result == Result.OK,
                f"{type(message).__name__} before HELLO answered {result_of(response).name}",
            )
        response = await device.link.request(Start(), deadline_s=2.0)
        # A serial device cannot see a host connect, so an earlier host's HELLO may still
        # hold (protocol.md section 8); START must still be refused in IDLE.
        allowed = {Result.HELLO_REQUIRED}
        if url.startswith("serial:"):
            allowed.add(Result.BAD_STATE)
        expect(
            response.result in allowed, f"START before HELLO answered {result_of(response).name}"
        )
    finally:
        await device.link.close()
    if response.result == Result.BAD_STATE:
        return (
            "STOP and ESTOP obeyed; an earlier host's HELLO still held (serial cannot see a "
            "host change), so the refusal of START before HELLO was not shown: run this suite "
            "first after powering the band on"
        )
    return f"STOP and ESTOP obeyed before HELLO; START answered {Result(response.result).name}"


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
        await load_schedule(device, schedule)
        await device.start()
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
        await load_schedule(device, schedule)
        await device.start()
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


async def check_bad_frames_ignored_and_resynchronised(url: str) -> str:
    async with device_for(url) as device:
        send_raw = getattr(device.link.transport, "send_raw", None)
        if send_raw is None:
            raise CheckFailed("skip: not a framed byte-stream transport")
        bad_seq, good_seq = 0x5151, 0x5252
        corrupt = bytearray(frame(encode(Heartbeat(), bad_seq)))
        corrupt[-2] ^= 0x55  # inside the CRC, before the delimiter
        good = frame(encode(Heartbeat(), good_seq))
        link = device.link
        bad_reply = link.expect(bad_seq)
        good_reply = link.expect(good_seq)
        try:
            await send_raw(b"\x13\x37garbage" + bytes(corrupt) + good)
            async with asyncio.timeout(2.0):
                response = await good_reply
            expect(
                response.result == Result.OK,
                f"HEARTBEAT after garbage: {result_of(response).name}",
            )
            await asyncio.sleep(0.3)
            expect(not bad_reply.done(), "the frame with a bad CRC was answered")
        finally:
            link.forget(bad_seq)
            link.forget(good_seq)
        return "garbage and a bad-CRC frame dropped unanswered; next frame answered"


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


async def check_ramp_limit_refused_not_slowed(url: str) -> str:
    async with device_for(url) as device:
        info = await device.link.request(Info(), deadline_s=2.0)
        expect(isinstance(info, InfoResponse), "INFO was not answered with an InfoResponse")
        assert isinstance(info, InfoResponse)
        limit, hw = info.ramp_limit_per_s, info.hardware_max_level
        if limit >= hw:
            raise CheckFailed("skip: the ramp limit is above the hardware maximum")
        pressure = device.info.device_model.actuator == "pressure"
        await device.set_limits(hw)
        begin = LoadBegin(
            actuator=ActuatorCode.PRESSURE if pressure else ActuatorCode.VIBRATION,
            segment_count=1,
            total_ms=1000,
            cap_level=hw,
            frequency_dhz=0 if pressure else 1200,
        )
        segment = LoadSegment(
            index=0,
            duration_ms=1000,
            from_level=0,
            to_level=limit + 1,
            shape=ShapeCode.LINEAR,
            phase=PhaseCode.RAMP,
            phase_index=0,
            repeat=0,
        )
        await refused(device, begin, Result.OK)
        await refused(device, segment, Result.INVALID_PARAMETER)
        await refused(device, begin, Result.OK)
        await refused(device, segment.model_copy(update={"to_level": limit}), Result.OK)
        await device.stop()
        return f"INFO ramp limit {limit}/s; {limit + 1}/s refused, {limit}/s accepted"


async def check_hello_starts_a_fresh_session(url: str) -> str:
    async with device_for(url) as device:
        hw = device.info.hardware_max_level
        await device.set_limits(hw // 2)
        await refused(device, Hello(min_version=1, max_version=PROTOCOL_VERSION), Result.OK)
        begin = LoadBegin(
            actuator=ActuatorCode.PRESSURE
            if device.info.device_model.actuator == "pressure"
            else ActuatorCode.VIBRATION,
            segment_count=1,
            total_ms=1000,
            cap_level=hw // 4,
            frequency_dhz=0 if device.info.device_model.actuator == "pressure" else 1200,
        )
        await refused(device, begin, Result.LIMITS_NOT_SET)
        return "LOAD_BEGIN after a new HELLO refused until SET_LIMITS"


async def check_lower_cap_limits_the_target_at_once(url: str) -> str:
    async with device_for(url) as device:
        if device.info.device_model.actuator != "pressure":
            raise CheckFailed("skip: pressure devices only")
        schedule = pressure_schedule([(4_000, 8_000), (60_000, 8_000), (4_000, 0)], 10_000)
        await load_schedule(device, schedule)
        await device.start()
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


CHECKS: list[tuple[str, Callable[[str], Awaitable[str]]]] = [
    # First, so that on a freshly powered serial band no earlier HELLO can still hold.
    ("stop and estop before hello", check_stop_and_estop_before_hello),
    ("version negotiation", check_version_negotiation),
    ("unknown opcode", check_unknown_opcode),
    ("single-fault defences advertised", check_single_fault_defences),
    ("cap refusals", check_cap_refusals),
    ("busy device refuses a second program", check_busy_device_refuses_a_second_program),
    ("bad frames ignored, stream resynchronised", check_bad_frames_ignored_and_resynchronised),
    ("ramp limit in INFO, steeper segment refused", check_ramp_limit_refused_not_slowed),
    ("hello starts a fresh session", check_hello_starts_a_fresh_session),
    ("lower cap limits the target at once", check_lower_cap_limits_the_target_at_once),
    ("estop vent time", check_estop_vent_time),
    ("watchdog vents without heartbeats", check_watchdog_vents_without_heartbeats),
    ("telemetry batches", check_telemetry_batches),
]


async def settle(url: str) -> str | None:
    """Bring the band to rest; None when it is IDLE, else what is wrong."""
    async with device_for(url) as device:
        _, after = await vent_and_clear(device)
    if after.state == FirmwareState.IDLE:
        return None
    return f"the band is {after.state.name} ({after.fault.name}) and could not be brought to rest"


async def run_conformance(
    url: str, on_result: Callable[[CheckResult], None] | None = None
) -> list[CheckResult]:
    results = []
    for index, (name, check) in enumerate(CHECKS):
        try:
            if index > 0:  # the first check needs a band no host has greeted yet
                problem = await settle(url)
                if problem is not None:
                    raise CheckFailed(f"before the check: {problem}")
            detail = await check(url)
            result = CheckResult(name, "pass", detail)
        except CheckFailed as exc:
            text = str(exc)
            result = (
                CheckResult(name, "skip", text[6:])
                if text.startswith("skip: ")
                else CheckResult(name, "fail", text)
            )
        except (DeviceError, TimeoutError) as exc:
            result = CheckResult(name, "fail", f"{type(exc).__name__}: {exc}")
        results.append(result)
        if on_result is not None:
            on_result(result)
    try:
        problem = await settle(url)  # leave the band as it was found: at rest
    except (DeviceError, TimeoutError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        result = CheckResult("left at rest", "fail", problem)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
