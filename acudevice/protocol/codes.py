"""Numbers the wire agrees on: kinds, opcodes, result codes, states, faults, flags.

Every value here is part of the contract in `docs/protocol.md`; changing one is a new
protocol version, so they are spelled out rather than generated with `auto()`.
"""

from __future__ import annotations

from enum import STRICT, IntEnum, IntFlag
from typing import Final

PROTOCOL_VERSION: Final = 1
"""The version this library speaks, and the only one `decode` accepts."""

MIN_PROTOCOL_VERSION: Final = 1
MAX_PROTOCOL_VERSION: Final = 1

HEADER_SIZE: Final = 5
"""version u8 | kind u8 | seq u16 | opcode u8."""

MAX_PAYLOAD: Final = 128
"""Largest payload any message may encode to, header included."""

BLE_DEFAULT_PAYLOAD: Final = 20
"""What one ATT write or notification carries at the default MTU of 23."""

MAX_STRING_BYTES: Final = 32
"""Longest UTF-8 string (in bytes, after the u8 length prefix)."""

MAX_BATCH_SAMPLES: Final = 8
"""Most samples one TELEMETRY_BATCH carries: 5 + 1 + 8 * 15 = 126 <= MAX_PAYLOAD."""

MAX_BATCH_MS: Final = 5000
"""Longest SET_TELEMETRY `batch_ms` a device accepts; above is INVALID_PARAMETER."""

NO_SEGMENT: Final = 0xFFFF
"""Segment index reported when no schedule segment is active (idle, streaming)."""

BLE_SERVICE_UUID: Final = "abd30001-45b8-407e-aa88-eb5746cb2140"
BLE_CONTROL_UUID: Final = "abd30002-45b8-407e-aa88-eb5746cb2140"
"""Requests: write with response; needs an encrypted, bonded, MITM-authenticated link."""
BLE_EVENTS_UUID: Final = "abd30003-45b8-407e-aa88-eb5746cb2140"
"""Responses, events and telemetry: notify."""
BLE_BATTERY_SERVICE_UUID: Final = "0000180f-0000-1000-8000-00805f9b34fb"
BLE_DEVICE_INFORMATION_SERVICE_UUID: Final = "0000180a-0000-1000-8000-00805f9b34fb"


class NamedCode(IntEnum):
    """A code a person reads (a state, a fault, a result, a reason): `print(sample.state)`
    says RUNNING, not 2. On the wire, in JSON and in arithmetic it is still the number, and
    a format spec (`f"{code:02X}"`) still formats the number."""

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return self.name if not spec else int.__format__(self, spec)


class Kind(IntEnum):
    REQUEST = 1
    RESPONSE = 2
    EVENT = 3
    TELEMETRY = 4


class Opcode(IntEnum):
    """Request opcodes; a response echoes its request's opcode."""

    HELLO = 0x01
    INFO = 0x02
    SET_LIMITS = 0x03
    LOAD_BEGIN = 0x04
    LOAD_SEGMENT = 0x05
    START = 0x06
    PAUSE = 0x07
    RESUME = 0x08
    STOP = 0x09
    ESTOP = 0x0A
    HEARTBEAT = 0x0B
    STATUS = 0x0C
    SET_TARGET = 0x0D
    SET_TELEMETRY = 0x0E


class EventCode(IntEnum):
    """Opcodes of unsolicited events (kind EVENT)."""

    STATE_CHANGED = 0x41
    FAULT_RAISED = 0x42
    VENT_STARTED = 0x43
    VENT_FINISHED = 0x44
    SEGMENT_STARTED = 0x45
    SCHEDULE_DONE = 0x46


class TelemetryCode(IntEnum):
    """Opcodes of telemetry samples (kind TELEMETRY)."""

    SAMPLE = 0x61
    BATCH = 0x62


class Result(NamedCode):
    """First byte of every response body."""

    OK = 0
    UNSUPPORTED_OPCODE = 1
    INVALID_PARAMETER = 2
    BAD_STATE = 3
    ABOVE_CAP = 4
    ABOVE_HARDWARE_MAX = 5
    LIMITS_NOT_SET = 6
    BUSY = 7
    NOT_PERMITTED = 8
    VERSION_UNSUPPORTED = 9
    FAULTED = 10
    LOW_BATTERY = 11
    HELLO_REQUIRED = 12


class FirmwareState(NamedCode):
    IDLE = 0
    LOADED = 1
    RUNNING = 2
    PAUSED = 3
    VENTING = 4
    FAULT = 5


class FaultCode(NamedCode):
    NONE = 0
    OVER_PRESSURE = 1
    STUCK_PUMP = 2
    SENSOR_FAULT = 3
    WATCHDOG = 4
    LOW_BATTERY = 5
    BROWNOUT = 6
    VENT_TIMEOUT = 7
    MOTOR_STALL = 8
    SENSOR_MISMATCH = 9
    """The two independent pressure channels disagree beyond the agreement tolerance."""
    STUCK_VALVE = 10
    """The release valve is open but the level does not fall."""


class Reason(NamedCode):
    """Why a state changed or a vent started."""

    NONE = 0
    HOST_REQUEST = 1
    LOAD_COMPLETE = 2
    SCHEDULE_DONE = 3
    VENT_DONE = 4
    HOST_STOP = 5
    HOST_ESTOP = 6
    WATCHDOG = 7
    FAULT = 8
    LOW_BATTERY = 9
    BOOT = 10
    LOAD_ABORTED = 11


class ActuatorCode(IntEnum):
    PRESSURE = 1
    VIBRATION = 2


class ShapeCode(IntEnum):
    LINEAR = 0
    STEP = 1


class PhaseCode(IntEnum):
    RAMP = 0
    HOLD = 1
    RELEASE = 2
    REST = 3


class Capabilities(IntFlag, boundary=STRICT):
    """INFO capability bits; reserved bits must be zero."""

    PRESSURE = 0x01
    VIBRATION = 0x02
    SCHEDULE_MEMORY = 0x04
    STREAMING = 0x08
    TELEMETRY_BATCH = 0x10
    """The firmware answers SET_TELEMETRY and may send TELEMETRY_BATCH (section 5)."""


class SafetyCapabilities(IntFlag, boundary=STRICT):
    """INFO safety bits: which single-fault defences the firmware runs (docs/safety.md)."""

    DUAL_SENSOR = 0x01
    """A second, independent level channel, compared with the first every control step."""
    ZERO_CHECK = 0x02
    """At rest the reading must be near zero, in both directions."""
    OVER_LEVEL_CUTOFF = 0x04
    """Over the cap (or the hardware maximum) on any channel: vent and fault."""
    STUCK_DRIVE_CHECK = 0x08
    """The level rising with the pump or motor commanded off: vent and fault."""
    STUCK_VALVE_CHECK = 0x10
    """The release valve open and the level not falling: vent and fault."""


class TelemetryFlags(IntFlag, boundary=STRICT):
    """Telemetry flag bits; reserved bits must be zero."""

    PUMP_ON = 0x01
    VALVE_OPEN = 0x02
    MOTOR_ON = 0x04
    CHARGING = 0x08
    LOW_BATTERY = 0x10
    STREAMING = 0x20
