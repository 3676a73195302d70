"""Every message on the wire, as frozen pydantic models.

Field order is wire order, and each field's `Wire` marker is its encoding, so the codec
(`codec.py`) and the field tables in `docs/protocol.md` are derived from these classes and
cannot disagree with them. Values out of range are refused at construction, never clamped.

A request names its reply: `Hello.response_type is HelloResponse`, and the generic
parameter (`Request[HelloResponse]`) carries the same fact for type checkers. Any request
may instead be answered by an `Ack` carrying a non-OK result.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationInfo, field_validator

from acudevice.protocol.codes import (
    MAX_BATCH_SAMPLES,
    MAX_PROTOCOL_VERSION,
    ActuatorCode,
    Capabilities,
    EventCode,
    FaultCode,
    FirmwareState,
    Kind,
    Opcode,
    PhaseCode,
    Reason,
    Result,
    SafetyCapabilities,
    ShapeCode,
    TelemetryCode,
    TelemetryFlags,
)
from acudevice.protocol.fields import (
    U8,
    CurrentSegment,
    Level,
    MeasuredLevel,
    Millis,
    Percent,
    PositiveMillis,
    SegmentIndex,
    Text,
    Version,
    Wire,
    flag_bits,
)


class Message(BaseModel):
    """Base of every payload body; `kind` and the opcode go in the header."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[Kind]

    def wire_opcode(self) -> int:
        """The header opcode byte for this message."""
        raise NotImplementedError


# ---------------------------------------------------------------- responses


class Response(Message):
    """A reply from the device; the header echoes the request's seq and opcode."""

    kind: ClassVar[Kind] = Kind.RESPONSE

    result: Annotated[Result, Wire.U8]


class Ack(Response):
    """The reply with no data: body is the result byte alone.

    It answers requests that return nothing, and any request the device refuses
    (including opcodes it does not know, echoed back with UNSUPPORTED_OPCODE).
    """

    opcode: Annotated[int, Strict(), Field(ge=0, le=0xFF)]

    def wire_opcode(self) -> int:
        return self.opcode


class TypedResponse(Response):
    """A reply with data; sent with result OK or with a result its fields explain."""

    opcode: ClassVar[Opcode]

    def wire_opcode(self) -> int:
        return int(self.opcode)


class HelloResponse(TypedResponse):
    """Chosen version (0 when none is common) and the device's own range."""

    opcode: ClassVar[Opcode] = Opcode.HELLO

    version: Annotated[int, Strict(), Field(ge=0, le=0x7F), Wire.U8]
    device_min_version: Version
    device_max_version: Version


class InfoResponse(TypedResponse):
    """What the device is: capabilities, hardware maximum, clock speed, identity, ramp limit."""

    opcode: ClassVar[Opcode] = Opcode.INFO

    protocol_version: Version
    capabilities: Annotated[Capabilities, flag_bits(Capabilities), Wire.U8]
    hardware_max_level: Level
    battery_percent: Percent
    time_scale: Annotated[
        int,
        Strict(),
        Field(ge=0, le=0xFFFF, description="device-s per wall-s; 0 = unbounded"),
        Wire.U16,
    ]
    model: Text
    firmware_version: Text
    serial: Text
    ramp_limit_per_s: Annotated[
        int,
        Strict(),
        Field(
            ge=1,
            le=0xFFFF,
            description="Pa/s or ‰/s; a steeper segment or SET_TARGET rise is refused",
        ),
        Wire.U16,
    ]
    safety: Annotated[SafetyCapabilities, flag_bits(SafetyCapabilities), Wire.U8] = (
        SafetyCapabilities(0)
    )
    """Single-fault defences the firmware runs (appended last: older fields keep offsets)."""


class StatusResponse(TypedResponse):
    """A snapshot of the state machine, the schedule position and the active cap."""

    opcode: ClassVar[Opcode] = Opcode.STATUS

    state: Annotated[FirmwareState, Wire.U8]
    elapsed_ms: Millis
    segment_index: CurrentSegment
    measured_level: MeasuredLevel
    target_level: Level
    battery_percent: Percent
    active_cap: Level
    fault: Annotated[FaultCode, Wire.U8]


# ---------------------------------------------------------------- requests

R = TypeVar("R", bound=Response)


class Request(Message, Generic[R]):
    """A command from the host; `response_type` is the reply it expects."""

    kind: ClassVar[Kind] = Kind.REQUEST
    opcode: ClassVar[Opcode]
    response_type: ClassVar[type[Response]]

    def wire_opcode(self) -> int:
        return int(self.opcode)


class Hello(Request[HelloResponse]):
    """Negotiate the version: the host's range in, the chosen version out."""

    opcode: ClassVar[Opcode] = Opcode.HELLO
    response_type: ClassVar[type[Response]] = HelloResponse

    min_version: Version = 1
    max_version: Version = MAX_PROTOCOL_VERSION

    @field_validator("max_version")
    @classmethod
    def _ordered(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_version")
        if low is not None and value < low:
            raise ValueError(f"max_version {value} is below min_version {low}")
        return value


class Info(Request[InfoResponse]):
    """Ask what the device is."""

    opcode: ClassVar[Opcode] = Opcode.INFO
    response_type: ClassVar[type[Response]] = InfoResponse


class SetLimits(Request[Ack]):
    """Tell the device its cap; while a schedule is loaded it may only go down."""

    opcode: ClassVar[Opcode] = Opcode.SET_LIMITS
    response_type: ClassVar[type[Response]] = Ack

    cap_level: Level


class LoadBegin(Request[Ack]):
    """Start a schedule upload; `segment_count` LoadSegment requests follow."""

    opcode: ClassVar[Opcode] = Opcode.LOAD_BEGIN
    response_type: ClassVar[type[Response]] = Ack

    actuator: Annotated[ActuatorCode, Wire.U8]
    segment_count: Annotated[int, Strict(), Field(ge=1, le=0xFFFE), Wire.U16]
    total_ms: PositiveMillis
    cap_level: Level
    frequency_dhz: Annotated[
        int, Strict(), Field(ge=0, le=0xFFFF, description="0.1 Hz; 0 for pressure"), Wire.U16
    ]

    @field_validator("frequency_dhz")
    @classmethod
    def _pressure_has_no_frequency(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("actuator") is ActuatorCode.PRESSURE and value != 0:
            raise ValueError("must be 0 for a pressure actuator")
        return value


class LoadSegment(Request[Ack]):
    """One segment; indices run 0..count-1 in order, start_ms is the running sum."""

    opcode: ClassVar[Opcode] = Opcode.LOAD_SEGMENT
    response_type: ClassVar[type[Response]] = Ack

    index: Annotated[int, Strict(), Field(ge=0, le=0xFFFD), Wire.U16]
    duration_ms: PositiveMillis
    from_level: Level
    to_level: Level
    shape: Annotated[ShapeCode, Wire.U8]
    phase: Annotated[PhaseCode, Wire.U8]
    phase_index: U8
    repeat: U8


class Start(Request[Ack]):
    """Run the loaded schedule from segment 0."""

    opcode: ClassVar[Opcode] = Opcode.START
    response_type: ClassVar[type[Response]] = Ack


class Pause(Request[Ack]):
    """Stop the schedule clock and hold the current level."""

    opcode: ClassVar[Opcode] = Opcode.PAUSE
    response_type: ClassVar[type[Response]] = Ack


class Resume(Request[Ack]):
    """Continue a paused schedule where it stopped."""

    opcode: ClassVar[Opcode] = Opcode.RESUME
    response_type: ClassVar[type[Response]] = Ack


class Stop(Request[Ack]):
    """Graceful release to zero; also clears a latched fault once its cause is gone."""

    opcode: ClassVar[Opcode] = Opcode.STOP
    response_type: ClassVar[type[Response]] = Ack


class Estop(Request[Ack]):
    """Vent now; accepted in every state, before HELLO, without authentication."""

    opcode: ClassVar[Opcode] = Opcode.ESTOP
    response_type: ClassVar[type[Response]] = Ack


class Heartbeat(Request[Ack]):
    """Feed the watchdog; send every second while running or paused."""

    opcode: ClassVar[Opcode] = Opcode.HEARTBEAT
    response_type: ClassVar[type[Response]] = Ack


class Status(Request[StatusResponse]):
    """Ask for a state snapshot."""

    opcode: ClassVar[Opcode] = Opcode.STATUS
    response_type: ClassVar[type[Response]] = StatusResponse


class SetTarget(Request[Ack]):
    """Streaming mode: go to `level` over `ramp_ms`; a rise steeper than the ramp limit is refused.

    For firmware without schedules. The rule is a segment's: docs/protocol.md section 9.
    """

    opcode: ClassVar[Opcode] = Opcode.SET_TARGET
    response_type: ClassVar[type[Response]] = Ack

    level: Level
    ramp_ms: Millis


class SetTelemetry(Request[Ack]):
    """Batch telemetry: hold samples up to `batch_ms` (0 = one per payload; HELLO resets)."""

    opcode: ClassVar[Opcode] = Opcode.SET_TELEMETRY
    response_type: ClassVar[type[Response]] = Ack

    batch_ms: Annotated[
        int,
        Strict(),
        Field(ge=0, le=0xFFFF, description="ms; 0 = off, above 5000 refused"),
        Wire.U16,
    ]


# ---------------------------------------------------------------- events


class Event(Message):
    """Unsolicited news from the device; seq is the device's own rolling counter."""

    kind: ClassVar[Kind] = Kind.EVENT
    opcode: ClassVar[EventCode]

    def wire_opcode(self) -> int:
        return int(self.opcode)


class StateChanged(Event):
    """The state machine moved, and why."""

    opcode: ClassVar[EventCode] = EventCode.STATE_CHANGED

    old: Annotated[FirmwareState, Wire.U8]
    new: Annotated[FirmwareState, Wire.U8]
    reason: Annotated[Reason, Wire.U8]


class FaultRaised(Event):
    """A fault latched; the level measured when it was detected."""

    opcode: ClassVar[EventCode] = EventCode.FAULT_RAISED

    fault: Annotated[FaultCode, Wire.U8]
    measured_level: MeasuredLevel

    @field_validator("fault")
    @classmethod
    def _not_none(cls, value: FaultCode) -> FaultCode:
        if value is FaultCode.NONE:
            raise ValueError("a raised fault cannot be NONE")
        return value


class VentStarted(Event):
    """The device began releasing to zero, and why."""

    opcode: ClassVar[EventCode] = EventCode.VENT_STARTED

    reason: Annotated[Reason, Wire.U8]
    measured_level: MeasuredLevel


class VentFinished(Event):
    """The level fell below the release threshold; how long it took."""

    opcode: ClassVar[EventCode] = EventCode.VENT_FINISHED

    measured_level: MeasuredLevel
    duration_ms: Millis


class SegmentStarted(Event):
    """A schedule segment began, at this elapsed schedule time."""

    opcode: ClassVar[EventCode] = EventCode.SEGMENT_STARTED

    index: SegmentIndex
    elapsed_ms: Millis


class ScheduleDone(Event):
    """The last segment ended; venting follows."""

    opcode: ClassVar[EventCode] = EventCode.SCHEDULE_DONE

    elapsed_ms: Millis


# ---------------------------------------------------------------- telemetry


class Telemetry(Message):
    """One sample of the live state (rates in section 5); exactly 20 bytes with its header."""

    kind: ClassVar[Kind] = Kind.TELEMETRY
    opcode: ClassVar[TelemetryCode] = TelemetryCode.SAMPLE

    t_ms: Annotated[int, Strict(), Field(ge=0, le=0xFFFF_FFFF, description="device ms"), Wire.U32]
    measured_level: MeasuredLevel
    target_level: Level
    state: Annotated[FirmwareState, Wire.U8]
    segment_index: CurrentSegment
    battery_percent: Percent
    flags: Annotated[TelemetryFlags, flag_bits(TelemetryFlags), Wire.U8]

    def wire_opcode(self) -> int:
        return int(self.opcode)


def t_ms_after(earlier: int, later: int) -> bool:
    """`later` is 1 .. 2**31-1 ms after `earlier`, counting modulo 2**32 (the u32 wraps)."""
    return 0 < (later - earlier) & 0xFFFF_FFFF < 0x8000_0000


class TelemetryBatch(Message):
    """Up to 8 samples, oldest first, in one payload (sent only after SET_TELEMETRY)."""

    kind: ClassVar[Kind] = Kind.TELEMETRY
    opcode: ClassVar[TelemetryCode] = TelemetryCode.BATCH

    samples: Annotated[tuple[Telemetry, ...], Field(min_length=1, max_length=MAX_BATCH_SAMPLES)]

    @field_validator("samples")
    @classmethod
    def _in_order(cls, value: tuple[Telemetry, ...]) -> tuple[Telemetry, ...]:
        for i in range(1, len(value)):
            if not t_ms_after(value[i - 1].t_ms, value[i].t_ms):
                raise ValueError(f"samples[{i}].t_ms is not after samples[{i - 1}].t_ms")
        return value

    def wire_opcode(self) -> int:
        return int(self.opcode)


# ---------------------------------------------------------------- tables

REQUESTS: tuple[type[Request[Any]], ...] = (
    Hello,
    Info,
    SetLimits,
    LoadBegin,
    LoadSegment,
    Start,
    Pause,
    Resume,
    Stop,
    Estop,
    Heartbeat,
    Status,
    SetTarget,
    SetTelemetry,
)
TYPED_RESPONSES: tuple[type[TypedResponse], ...] = (HelloResponse, InfoResponse, StatusResponse)
EVENTS: tuple[type[Event], ...] = (
    StateChanged,
    FaultRaised,
    VentStarted,
    VentFinished,
    SegmentStarted,
    ScheduleDone,
)
