"""Golden vectors: one sample of every message, encoded by the codec.

`tests/vectors/*.json` and the vector tables of `docs/protocol.md` are written from here
(`python -m acudevice.protocol.docgen`); the golden tests then pin the codec to the JSON,
both ways, so a change to the wire format shows up as a failing test, not a silent drift.
"""

from __future__ import annotations

from typing import Any

from acudevice.protocol import messages as m
from acudevice.protocol.codec import decode, encode, opcode_name
from acudevice.protocol.codes import (
    ActuatorCode,
    Capabilities,
    FaultCode,
    FirmwareState,
    Opcode,
    PhaseCode,
    Reason,
    Result,
    SafetyCapabilities,
    ShapeCode,
    TelemetryFlags,
)
from acudevice.protocol.framing import crc16, frame

OK = Result.OK
_RUNNING = FirmwareState.RUNNING

_REQUESTS: list[tuple[str, int, m.Message]] = [
    ("hello", 1, m.Hello(min_version=1, max_version=1)),
    ("info", 2, m.Info()),
    ("set_limits", 3, m.SetLimits(cap_level=20000)),
    (
        "load_begin",
        4,
        m.LoadBegin(
            actuator=ActuatorCode.PRESSURE,
            segment_count=4,
            total_ms=180000,
            cap_level=20000,
            frequency_dhz=0,
        ),
    ),
    (
        "load_begin_vibration",
        5,
        m.LoadBegin(
            actuator=ActuatorCode.VIBRATION,
            segment_count=2,
            total_ms=60000,
            cap_level=600,
            frequency_dhz=2000,
        ),
    ),
    (
        "load_segment",
        6,
        m.LoadSegment(
            index=0,
            duration_ms=30000,
            from_level=0,
            to_level=15000,
            shape=ShapeCode.LINEAR,
            phase=PhaseCode.RAMP,
            phase_index=0,
            repeat=0,
        ),
    ),
    ("start", 7, m.Start()),
    ("pause", 8, m.Pause()),
    ("resume", 9, m.Resume()),
    ("stop", 10, m.Stop()),
    ("estop", 11, m.Estop()),
    ("heartbeat", 300, m.Heartbeat()),
    ("status", 13, m.Status()),
    ("set_target", 14, m.SetTarget(level=12000, ramp_ms=10000)),
    ("set_telemetry", 16, m.SetTelemetry(batch_ms=1000)),
]


def _sample(t_ms: int, measured: int) -> m.Telemetry:
    """A sample of a hold at 15 kPa, for the batch vectors."""
    return m.Telemetry(
        t_ms=t_ms,
        measured_level=measured,
        target_level=15000,
        state=_RUNNING,
        segment_index=2,
        battery_percent=85,
        flags=TelemetryFlags.PUMP_ON if measured < 15000 else TelemetryFlags(0),
    )


def _acks_ok() -> list[tuple[str, int, m.Message]]:
    """An OK `Ack` for every request whose reply carries no data, same seq."""
    return [
        (f"{name}_ok", seq, m.Ack(opcode=request.wire_opcode(), result=OK))
        for name, seq, request in _REQUESTS
        if isinstance(request, m.Request) and request.response_type is m.Ack
    ]


SAMPLES: dict[str, list[tuple[str, int, m.Message]]] = {
    "requests": _REQUESTS,
    "responses": [
        (
            "hello_ok",
            1,
            m.HelloResponse(result=OK, version=1, device_min_version=1, device_max_version=1),
        ),
        (
            "hello_version_unsupported",
            1,
            m.HelloResponse(
                result=Result.VERSION_UNSUPPORTED,
                version=0,
                device_min_version=2,
                device_max_version=3,
            ),
        ),
        (
            "info",
            2,
            m.InfoResponse(
                result=OK,
                protocol_version=1,
                capabilities=Capabilities.PRESSURE
                | Capabilities.SCHEDULE_MEMORY
                | Capabilities.STREAMING
                | Capabilities.TELEMETRY_BATCH,
                hardware_max_level=40000,
                battery_percent=87,
                time_scale=1,
                model="wristband-p1",
                firmware_version="1.4.2",
                serial="WB1-000123",
                ramp_limit_per_s=2000,
                safety=SafetyCapabilities.DUAL_SENSOR
                | SafetyCapabilities.ZERO_CHECK
                | SafetyCapabilities.OVER_LEVEL_CUTOFF
                | SafetyCapabilities.STUCK_DRIVE_CHECK
                | SafetyCapabilities.STUCK_VALVE_CHECK,
            ),
        ),
        *_acks_ok(),
        ("load_segment_above_cap", 6, m.Ack(opcode=Opcode.LOAD_SEGMENT, result=Result.ABOVE_CAP)),
        ("start_hello_required", 7, m.Ack(opcode=Opcode.START, result=Result.HELLO_REQUIRED)),
        (
            "status",
            13,
            m.StatusResponse(
                result=OK,
                state=_RUNNING,
                elapsed_ms=45250,
                segment_index=1,
                measured_level=14987,
                target_level=15000,
                battery_percent=86,
                active_cap=20000,
                fault=FaultCode.NONE,
            ),
        ),
        (
            "set_telemetry_invalid_parameter",
            17,
            m.Ack(opcode=Opcode.SET_TELEMETRY, result=Result.INVALID_PARAMETER),
        ),
        ("unsupported_opcode", 15, m.Ack(opcode=0x7E, result=Result.UNSUPPORTED_OPCODE)),
    ],
    "events": [
        (
            "state_changed",
            1,
            m.StateChanged(old=FirmwareState.LOADED, new=_RUNNING, reason=Reason.HOST_REQUEST),
        ),
        ("fault_raised", 2, m.FaultRaised(fault=FaultCode.OVER_PRESSURE, measured_level=41230)),
        (
            "fault_raised_sensor_mismatch",
            3,
            m.FaultRaised(fault=FaultCode.SENSOR_MISMATCH, measured_level=9850),
        ),
        (
            "fault_raised_stuck_valve",
            4,
            m.FaultRaised(fault=FaultCode.STUCK_VALVE, measured_level=11900),
        ),
        ("vent_started", 3, m.VentStarted(reason=Reason.HOST_ESTOP, measured_level=15012)),
        ("vent_finished", 4, m.VentFinished(measured_level=1850, duration_ms=3200)),
        ("segment_started", 5, m.SegmentStarted(index=1, elapsed_ms=30000)),
        ("schedule_done", 6, m.ScheduleDone(elapsed_ms=180000)),
    ],
    "telemetry": [
        (
            "running",
            1000,
            m.Telemetry(
                t_ms=45250,
                measured_level=14987,
                target_level=15000,
                state=_RUNNING,
                segment_index=1,
                battery_percent=86,
                flags=TelemetryFlags.PUMP_ON,
            ),
        ),
        (
            "venting_negative_noise",
            1001,
            m.Telemetry(
                t_ms=52000,
                measured_level=-35,
                target_level=0,
                state=FirmwareState.VENTING,
                segment_index=0xFFFF,
                battery_percent=86,
                flags=TelemetryFlags.VALVE_OPEN,
            ),
        ),
        ("batch_one_sample", 1002, m.TelemetryBatch(samples=(_sample(60000, 15003),))),
        (
            "batch_eight_samples",
            1003,
            m.TelemetryBatch(
                samples=tuple(_sample(60100 + 100 * i, 15000 + 7 * i - 20) for i in range(8))
            ),
        ),
        (
            "batch_across_the_t_ms_wrap",
            1004,
            m.TelemetryBatch(samples=(_sample(0xFFFF_FFCE, 14990), _sample(50, 15010))),
        ),
    ],
}

FRAMING_SAMPLES: list[tuple[str, bytes]] = [
    ("heartbeat_seq_258", encode(m.Heartbeat(), 258)),
    ("start_seq_7_has_zero_bytes", encode(m.Start(), 7)),
    ("telemetry_running", encode(SAMPLES["telemetry"][0][2], 1000)),
]


def message_vectors(group: str) -> list[dict[str, Any]]:
    out = []
    for name, seq, message in SAMPLES[group]:
        payload = encode(message, seq)
        if decode(payload).message != message:
            raise RuntimeError(f"vector {name} does not round-trip")
        out.append(
            {
                "name": name,
                "kind": message.kind.name,
                "opcode": opcode_name(message.kind, message.wire_opcode()),
                "seq": seq,
                "type": type(message).__name__,
                "fields": message.model_dump(mode="json"),
                "hex": payload.hex(),
            }
        )
    return out


def framing_vectors() -> dict[str, Any]:
    frames = [
        {"name": n, "payload": p.hex(), "crc16": f"{crc16(p):04x}", "frame": frame(p).hex()}
        for n, p in FRAMING_SAMPLES
    ]
    first, second = frame(FRAMING_SAMPLES[0][1]), frame(FRAMING_SAMPLES[1][1])
    stream = bytes.fromhex("13 37 ff") + first[:3] + b"\x00" + second
    return {
        "crc_check": {"input": b"123456789".hex(), "crc16": f"{crc16(b'123456789'):04x}"},
        "frames": frames,
        "resync": {
            "stream": stream.hex(),
            "payloads": [FRAMING_SAMPLES[1][1].hex()],
            "note": "garbage and a cut-off frame, then one good frame",
        },
    }


def all_vectors() -> dict[str, Any]:
    data: dict[str, Any] = {group: message_vectors(group) for group in SAMPLES}
    data["framing"] = framing_vectors()
    return data


def message_from_vector(vector: dict[str, Any]) -> m.Message:
    """Rebuild the model a vector names (used by the golden tests)."""
    cls: type[m.Message] = getattr(m, vector["type"])
    return cls.model_validate(vector["fields"])
