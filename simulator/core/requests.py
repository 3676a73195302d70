"""Requests into the firmware: decode, check, act, answer (docs/protocol.md sections 3, 8, 9).

`handle(fw, payload, wall)` never raises on wire input. A payload that does not decode is
answered by its header when the header is readable and says REQUEST (unknown opcode,
foreign version, bad body), and dropped otherwise; either way nothing moves. Only a fully
validated request feeds the watchdog or changes state.

A payload byte-identical to the previous request (same seq, same body: a duplicated frame)
gets the previous response again without being executed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acudevice.protocol import (
    MAX_BATCH_MS,
    MAX_PROTOCOL_VERSION,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    Ack,
    ActuatorCode,
    BadVersion,
    Capabilities,
    Estop,
    FirmwareState,
    Heartbeat,
    Hello,
    HelloResponse,
    Info,
    InfoResponse,
    Kind,
    LoadBegin,
    LoadSegment,
    Message,
    Opcode,
    Pause,
    ProtocolError,
    Reason,
    Request,
    Result,
    Resume,
    SetLimits,
    SetTarget,
    SetTelemetry,
    Start,
    StateChanged,
    Status,
    StatusResponse,
    Stop,
    UnknownOpcode,
    decode,
    encode,
)
from simulator.core.firmware import Firmware, VentKind
from simulator.core.upload import Upload, check_begin, check_level, steeper_than

S = FirmwareState
_WITHOUT_HELLO = frozenset(
    {Opcode.HELLO, Opcode.INFO, Opcode.STATUS, Opcode.HEARTBEAT, Opcode.STOP, Opcode.ESTOP}
)


def handle(fw: Firmware, payload: bytes, wall: float) -> bytes | None:
    """The response payload for one request payload, or None when it is dropped."""
    if payload == fw.last_request and fw.last_response is not None:
        return fw.last_response
    try:
        envelope = decode(payload)
    except ProtocolError as exc:
        return _refuse_undecodable(exc)
    message = envelope.message
    if envelope.kind is not Kind.REQUEST or not isinstance(message, Request):
        return None
    fw.last_request_wall = wall
    response = _dispatch(fw, message)
    out = encode(response, envelope.seq)
    fw.last_request, fw.last_response = payload, out
    return out


def _refuse_undecodable(exc: ProtocolError) -> bytes | None:
    header = exc.header
    if header is None or header.kind != Kind.REQUEST:
        return None
    if isinstance(exc, BadVersion):
        result = Result.VERSION_UNSUPPORTED
    elif isinstance(exc, UnknownOpcode):
        result = Result.UNSUPPORTED_OPCODE
    else:
        result = Result.INVALID_PARAMETER
    return encode(Ack(opcode=header.opcode, result=result), header.seq)


def _ack(request: Request[Any], result: Result) -> Ack:
    return Ack(opcode=int(request.opcode), result=result)


def _dispatch(fw: Firmware, request: Request[Any]) -> Message:
    if request.opcode not in _WITHOUT_HELLO and not fw.hello_done:
        return _ack(request, Result.HELLO_REQUIRED)
    handler = _HANDLERS[type(request)]
    return handler(fw, request)


# ------------------------------------------------------------ session and information


def _hello(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, Hello)
    low = max(request.min_version, MIN_PROTOCOL_VERSION)
    high = min(request.max_version, MAX_PROTOCOL_VERSION)
    ok = low <= high
    if ok:
        _fresh_session(fw)
    return HelloResponse(
        result=Result.OK if ok else Result.VERSION_UNSUPPORTED,
        version=high if ok else 0,
        device_min_version=MIN_PROTOCOL_VERSION,
        device_max_version=MAX_PROTOCOL_VERSION,
    )


def ramp_limit(fw: Firmware) -> int:
    """INFO's `ramp_limit_per_s`: the steepest segment the firmware accepts."""
    return max(1, int(fw.model.max_ramp_level_per_s))


def _fresh_session(fw: Firmware) -> None:
    """A HELLO starts a new session: its limits must be set again, and no schedule
    uploaded or loaded under an earlier host's limits survives. A running session goes on
    (the new host may heartbeat or stop it)."""
    fw.hello_done = True
    fw.limits_set = False
    fw.set_telemetry_batch(0)
    if fw.upload is not None:
        fw.upload = None
        fw.emit(StateChanged(old=S.IDLE, new=S.IDLE, reason=Reason.LOAD_ABORTED))
    if fw.state is S.LOADED:
        fw.plan = None
        fw.transition(S.IDLE, Reason.HOST_REQUEST)


def _info(fw: Firmware, request: Request[Any]) -> Message:
    return InfoResponse(
        result=Result.OK,
        protocol_version=PROTOCOL_VERSION,
        capabilities=fw.model.capabilities,
        hardware_max_level=fw.model.hardware_max_level,
        battery_percent=fw.battery_percent,
        time_scale=fw.time_scale,
        model=fw.model.name,
        firmware_version=fw.model.firmware_version,
        serial=fw.serial,
        ramp_limit_per_s=ramp_limit(fw),
        safety=fw.model.safety,
    )


def _status(fw: Firmware, request: Request[Any]) -> Message:
    return StatusResponse(
        result=Result.OK,
        state=fw.state,
        elapsed_ms=fw.elapsed_ms & 0xFFFF_FFFF,
        segment_index=fw.segment_index,
        measured_level=fw.measured,
        target_level=min(round(fw.target), 0xFFFF),
        battery_percent=fw.battery_percent,
        active_cap=fw.active_cap,
        fault=fw.fault,
    )


def _heartbeat(fw: Firmware, request: Request[Any]) -> Message:
    return _ack(request, Result.OK)


def _set_limits(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, SetLimits)
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    if request.cap_level > fw.model.hardware_max_level:
        return _ack(request, Result.ABOVE_HARDWARE_MAX)
    in_session = fw.state in (S.LOADED, S.RUNNING, S.PAUSED)
    if in_session and request.cap_level > fw.active_cap:
        return _ack(request, Result.BAD_STATE)
    if not fw.ignore_limits:
        fw.set_cap(request.cap_level)
        fw.target = min(fw.target, float(request.cap_level))  # STATUS right after never shows more
    fw.limits_set = True
    return _ack(request, Result.OK)


# ------------------------------------------------------------ loading


def _load_begin(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, LoadBegin)
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    if fw.state not in (S.IDLE, S.LOADED):
        return _ack(request, Result.BAD_STATE)
    if not fw.limits_set:
        return _ack(request, Result.LIMITS_NOT_SET)
    actuator = ActuatorCode.PRESSURE if fw.model.actuator == "pressure" else ActuatorCode.VIBRATION
    result = check_begin(
        request, actuator=actuator, cap=fw.active_cap, hardware_max=fw.model.hardware_max_level
    )
    if result is not Result.OK:
        return _ack(request, result)
    if fw.state is S.LOADED:
        fw.plan = None
        fw.transition(S.IDLE, Reason.HOST_REQUEST)
    fw.upload = Upload(request)
    return _ack(request, Result.OK)


def _load_segment(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, LoadSegment)
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    upload = fw.upload
    if fw.state is not S.IDLE or upload is None:
        return _ack(request, Result.BAD_STATE)
    result = upload.add(
        request,
        cap=fw.active_cap,
        hardware_max=fw.model.hardware_max_level,
        ramp_limit=ramp_limit(fw),
    )
    if result is not Result.OK:
        fw.upload = None
        fw.emit(StateChanged(old=S.IDLE, new=S.IDLE, reason=Reason.LOAD_ABORTED))
        return _ack(request, result)
    if upload.complete:
        fw.plan = upload.plan()
        fw.upload = None
        fw.transition(S.LOADED, Reason.LOAD_COMPLETE)
    return _ack(request, Result.OK)


# ------------------------------------------------------------ running


def _start(fw: Firmware, request: Request[Any]) -> Message:
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    if fw.state is not S.LOADED:
        return _ack(request, Result.BAD_STATE)
    if fw.board.battery_charge() < fw.model.battery.start_refused_pct:
        return _ack(request, Result.LOW_BATTERY)
    fw.start_schedule()
    return _ack(request, Result.OK)


def _pause(fw: Firmware, request: Request[Any]) -> Message:
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    if fw.state is not S.RUNNING:
        return _ack(request, Result.BAD_STATE)
    fw.transition(S.PAUSED, Reason.HOST_REQUEST)
    return _ack(request, Result.OK)


def _resume(fw: Firmware, request: Request[Any]) -> Message:
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    if fw.state is not S.PAUSED:
        return _ack(request, Result.BAD_STATE)
    if fw.board.battery_charge() < fw.model.battery.start_refused_pct:
        return _ack(request, Result.LOW_BATTERY)
    fw.transition(S.RUNNING, Reason.HOST_REQUEST)
    return _ack(request, Result.OK)


def _stop(fw: Firmware, request: Request[Any]) -> Message:
    if fw.state in (S.RUNNING, S.PAUSED):
        fw.begin_vent(VentKind.GRACEFUL, Reason.HOST_STOP)
    elif fw.state is S.LOADED:
        fw.plan = None
        fw.transition(S.IDLE, Reason.HOST_REQUEST)
    elif fw.state is S.FAULT:
        if not fw.supervisor.fault_cleared(fw):
            return _ack(request, Result.FAULTED)
        fw.clear_fault()
    return _ack(request, Result.OK)


def _estop(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, Estop)
    if fw.state is not S.FAULT:
        fw.begin_vent(VentKind.DUMP, Reason.HOST_ESTOP)
    return _ack(request, Result.OK)


def _set_target(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, SetTarget)
    if fw.state is S.FAULT:
        return _ack(request, Result.FAULTED)
    streaming_session = fw.state in (S.RUNNING, S.PAUSED) and fw.streaming
    if not (streaming_session or (fw.state is S.IDLE and fw.upload is None)):
        return _ack(request, Result.BAD_STATE)
    if not fw.limits_set:
        return _ack(request, Result.LIMITS_NOT_SET)
    result = check_level(request.level, cap=fw.active_cap, hardware_max=fw.model.hardware_max_level)
    if result is not Result.OK:
        return _ack(request, result)
    # A rise steeper than the ramp limit is refused, as a steeper segment is: never slowed,
    # so the band is where the host asked, when it asked. It rises from the target STATUS
    # reports (a new stream from 0). A fall is never refused: lowering is always allowed.
    start = round(fw.target) if fw.streaming else 0
    if steeper_than(request.level - start, request.ramp_ms, ramp_limit(fw)):
        return _ack(request, Result.INVALID_PARAMETER)
    rising = request.level > fw.target
    if rising and fw.board.battery_charge() < fw.model.battery.start_refused_pct:
        return _ack(request, Result.LOW_BATTERY)
    fw.start_stream(request.level, request.ramp_ms)
    return _ack(request, Result.OK)


def _set_telemetry(fw: Firmware, request: Request[Any]) -> Message:
    assert isinstance(request, SetTelemetry)
    if not fw.model.capabilities & Capabilities.TELEMETRY_BATCH:
        return _ack(request, Result.UNSUPPORTED_OPCODE)
    if request.batch_ms > MAX_BATCH_MS:
        return _ack(request, Result.INVALID_PARAMETER)
    fw.set_telemetry_batch(request.batch_ms)
    return _ack(request, Result.OK)


Handler = Callable[[Firmware, Request[Any]], Message]
_HANDLERS: dict[type[Request[Any]], Handler] = {
    Hello: _hello,
    Info: _info,
    Status: _status,
    Stop: _stop,
    Estop: _estop,
    Heartbeat: _heartbeat,
    Start: _start,
    LoadBegin: _load_begin,
    LoadSegment: _load_segment,
    Pause: _pause,
    Resume: _resume,
    SetLimits: _set_limits,
    SetTarget: _set_target,
    SetTelemetry: _set_telemetry,
}
