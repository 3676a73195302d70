"""Conformance checks of the wire contract: versions, opcodes, framing, sessions, ramps."""

from __future__ import annotations

import asyncio

from acudevice.conformance.support import (
    CheckFailed,
    answer,
    device_for,
    expect,
    level,
    refused,
)
from acudevice.device import Device
from acudevice.device.addresses import open_device_transport
from acudevice.protocol import (
    PROTOCOL_VERSION,
    Ack,
    ActuatorCode,
    Capabilities,
    Estop,
    Heartbeat,
    Hello,
    HelloResponse,
    Info,
    InfoResponse,
    LoadBegin,
    LoadSegment,
    PhaseCode,
    Result,
    SetTarget,
    ShapeCode,
    Start,
    Stop,
    encode,
    frame,
)

UNKNOWN_OPCODE = 0x7E


async def check_version_negotiation(url: str) -> str:
    async with device_for(url) as device:
        expect(
            device.info.protocol_version == PROTOCOL_VERSION,
            f"INFO reports protocol version {device.info.protocol_version}, expected "
            f"{PROTOCOL_VERSION}",
        )
        response = await device.link.request(
            Hello(min_version=100, max_version=127), deadline_s=2.0
        )
        expect(
            isinstance(response, HelloResponse),
            f"HELLO 100..127 was answered with {answer(response)}, expected a HelloResponse",
        )
        assert isinstance(response, HelloResponse)
        expect(
            response.result == Result.VERSION_UNSUPPORTED and response.version == 0,
            f"HELLO 100..127 answered {response.result.name} version {response.version}, "
            "expected VERSION_UNSUPPORTED version 0",
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
        expect(
            response.result == Result.UNSUPPORTED_OPCODE,
            f"opcode 0x{UNKNOWN_OPCODE:02X} answered {answer(response)}, expected "
            "UNSUPPORTED_OPCODE",
        )
        return "UNSUPPORTED_OPCODE with the same seq and opcode"


async def check_stop_and_estop_before_hello(url: str) -> str:
    transport = open_device_transport(url)
    device = Device(transport, heartbeat_interval_s=None)
    await device.link.open()
    try:
        for message in (Stop(), Estop()):
            response = await device.link.request(message, deadline_s=2.0)
            expect(
                response.result == Result.OK,
                f"{type(message).__name__.upper()} before HELLO answered {answer(response)}, "
                "expected OK",
            )
        response = await device.link.request(Start(), deadline_s=2.0)
        # A serial device cannot see a host connect, so an earlier host's HELLO may still
        # hold (protocol.md section 8); START must still be refused in IDLE.
        allowed = {Result.HELLO_REQUIRED}
        if url.startswith("serial:"):
            allowed.add(Result.BAD_STATE)
        expect(
            response.result in allowed,
            f"START before HELLO answered {answer(response)}, expected "
            + " or ".join(r.name for r in sorted(allowed)),
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
                f"HEARTBEAT sent after garbage bytes answered {answer(response)}, expected OK",
            )
            await asyncio.sleep(0.3)
            expect(
                not bad_reply.done(),
                f"the HEARTBEAT frame with a bad CRC (seq 0x{bad_seq:04X}) was answered, "
                "expected it dropped",
            )
        finally:
            link.forget(bad_seq)
            link.forget(good_seq)
        return "garbage and a bad-CRC frame dropped unanswered; next frame answered"


async def check_ramp_limit_refused_not_slowed(url: str) -> str:
    async with device_for(url) as device:
        info = await device.link.request(Info(), deadline_s=2.0)
        expect(
            isinstance(info, InfoResponse),
            f"INFO was answered with {answer(info)}, expected an InfoResponse",
        )
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
        rate = f"per s (INFO's ramp limit is {level(device, limit)} per s)"
        await refused(device, begin, Result.OK, "LOAD_BEGIN of one 1 s segment")
        await refused(
            device,
            segment,
            Result.INVALID_PARAMETER,
            f"LOAD_SEGMENT 0 to {level(device, limit + 1)} in 1 s, {level(device, limit + 1)} "
            f"{rate}",
        )
        await refused(device, begin, Result.OK, "LOAD_BEGIN of one 1 s segment, again")
        await refused(
            device,
            segment.model_copy(update={"to_level": limit}),
            Result.OK,
            f"LOAD_SEGMENT 0 to {level(device, limit)} in 1 s, {level(device, limit)} {rate}",
        )
        await device.stop()
        detail = (
            f"INFO ramp limit {level(device, limit)}/s; {level(device, limit + 1)}/s refused, "
            f"{level(device, limit)}/s accepted"
        )
        if not info.capabilities & Capabilities.STREAMING:
            return f"{detail} (segments; no streaming)"
        # The same rule for a streamed target: a rise from rest the band would have to slow
        # is refused, never followed at the limit.
        await refused(
            device,
            SetTarget(level=limit + 1, ramp_ms=1000),
            Result.INVALID_PARAMETER,
            f"SET_TARGET to {level(device, limit + 1)} in 1 s, {level(device, limit + 1)} {rate}",
        )
        await refused(
            device,
            SetTarget(level=limit, ramp_ms=1000),
            Result.OK,
            f"SET_TARGET to {level(device, limit)} in 1 s, {level(device, limit)} {rate}",
        )
        await device.stop()
        return f"{detail}, in a segment and in a SET_TARGET rise"


async def check_hello_starts_a_fresh_session(url: str) -> str:
    async with device_for(url) as device:
        hw = device.info.hardware_max_level
        await device.set_limits(hw // 2)
        await refused(
            device, Hello(min_version=1, max_version=PROTOCOL_VERSION), Result.OK, "a second HELLO"
        )
        begin = LoadBegin(
            actuator=ActuatorCode.PRESSURE
            if device.info.device_model.actuator == "pressure"
            else ActuatorCode.VIBRATION,
            segment_count=1,
            total_ms=1000,
            cap_level=hw // 4,
            frequency_dhz=0 if device.info.device_model.actuator == "pressure" else 1200,
        )
        await refused(
            device,
            begin,
            Result.LIMITS_NOT_SET,
            f"LOAD_BEGIN (cap {level(device, hw // 4)}) after SET_LIMITS "
            f"{level(device, hw // 2)} and then a new HELLO",
        )
        return "LOAD_BEGIN after a new HELLO refused until SET_LIMITS"
