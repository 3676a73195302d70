"""Decoding refuses bad payloads with a typed error saying what and where."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from acudevice.errors import AcuDeviceError
from acudevice.protocol import (
    MAX_PAYLOAD,
    Ack,
    BadField,
    BadVersion,
    Capabilities,
    Estop,
    FaultCode,
    FaultRaised,
    Hello,
    HelloResponse,
    Info,
    InfoResponse,
    Kind,
    LoadBegin,
    LoadSegment,
    Opcode,
    OversizeFrame,
    ProtocolError,
    Result,
    SetLimits,
    Start,
    Status,
    StatusResponse,
    Telemetry,
    TelemetryFlags,
    TrailingBytes,
    TruncatedFrame,
    UnknownOpcode,
    decode,
    decode_header,
    encode,
    try_decode,
)

pytestmark = pytest.mark.unit


def _info(**overrides: object) -> InfoResponse:
    fields: dict[str, object] = dict(
        result=Result.OK,
        protocol_version=1,
        capabilities=Capabilities.PRESSURE,
        hardware_max_level=40000,
        battery_percent=50,
        time_scale=1,
        model="m",
        firmware_version="1.0.0",
        serial="s",
        ramp_limit_per_s=2000,
    )
    fields.update(overrides)
    return InfoResponse.model_validate(fields)


def test_protocol_errors_are_acudevice_errors() -> None:
    assert issubclass(ProtocolError, AcuDeviceError)
    for cls in (BadField, BadVersion, OversizeFrame, TrailingBytes, TruncatedFrame, UnknownOpcode):
        assert issubclass(cls, ProtocolError)


def test_header_layout_is_version_kind_seq_opcode_little_endian() -> None:
    payload = encode(SetLimits(cap_level=0x1234), 0xABCD)
    assert payload == bytes([1, Kind.REQUEST, 0xCD, 0xAB, Opcode.SET_LIMITS, 0x34, 0x12])
    header = decode_header(payload)
    assert (header.version, header.kind, header.seq, header.opcode) == (1, 1, 0xABCD, 3)


@pytest.mark.parametrize("size", range(5))
def test_short_header_is_truncated_at_offset_zero(size: int) -> None:
    with pytest.raises(TruncatedFrame) as info:
        decode(encode(Start(), 1)[:size])
    assert info.value.offset == 0 and info.value.got == size and info.value.needed == 5


def test_every_truncation_of_a_fixed_body_is_reported() -> None:
    payload = encode(
        LoadSegment(
            index=1,
            duration_ms=5,
            from_level=1,
            to_level=2,
            shape=0,
            phase=1,
            phase_index=0,
            repeat=0,
        ),
        9,
    )
    for size in range(5, len(payload)):
        with pytest.raises(TruncatedFrame) as info:
            decode(payload[:size])
        assert info.value.header is not None and info.value.header.seq == 9
        assert "LoadSegment" in str(info.value)


def test_trailing_bytes_are_refused_with_their_offset() -> None:
    payload = encode(SetLimits(cap_level=5), 1) + b"\x00"
    with pytest.raises(TrailingBytes) as info:
        decode(payload)
    assert info.value.offset == 7 and info.value.extra == 1


def test_unknown_request_opcode_carries_seq_and_opcode_to_answer_it() -> None:
    payload = bytes([1, Kind.REQUEST, 0x34, 0x12, 0x7E, 1, 2])
    with pytest.raises(UnknownOpcode) as info:
        decode(payload)
    err = info.value
    assert (err.seq, err.opcode, err.kind) == (0x1234, 0x7E, Kind.REQUEST)
    reply = encode(Ack(opcode=err.opcode, result=Result.UNSUPPORTED_OPCODE), err.seq)
    assert decode(reply).message == Ack(opcode=0x7E, result=Result.UNSUPPORTED_OPCODE)
    assert "0x7E" in str(err) and "4660" in str(err)


@pytest.mark.parametrize("kind", [Kind.EVENT, Kind.TELEMETRY])
def test_unknown_event_and_telemetry_opcodes(kind: Kind) -> None:
    with pytest.raises(UnknownOpcode):
        decode(bytes([1, kind, 0, 0, 0x01]))


def test_response_bodies_select_ack_by_length() -> None:
    ack = decode(bytes([1, Kind.RESPONSE, 5, 0, Opcode.INFO, Result.BUSY])).message
    assert ack == Ack(opcode=Opcode.INFO, result=Result.BUSY)
    with pytest.raises(TruncatedFrame):
        decode(bytes([1, Kind.RESPONSE, 5, 0, Opcode.START]))
    with pytest.raises(TrailingBytes):
        decode(bytes([1, Kind.RESPONSE, 5, 0, Opcode.START, 0, 0]))
    with pytest.raises(UnknownOpcode):
        decode(bytes([1, Kind.RESPONSE, 5, 0, 0x7E, 0, 0]))
    with pytest.raises(TruncatedFrame):
        decode(bytes([1, Kind.RESPONSE, 5, 0, Opcode.STATUS, 0, 0]))


def test_bad_version_keeps_the_header() -> None:
    payload = bytes([2]) + encode(Status(), 77)[1:]
    with pytest.raises(BadVersion) as info:
        decode(payload)
    assert info.value.version == 2 and info.value.header is not None
    assert info.value.header.seq == 77 and info.value.offset == 0


def test_bad_kind_is_a_bad_field_at_offset_one() -> None:
    with pytest.raises(BadField) as info:
        decode(bytes([1, 9, 0, 0, 1]))
    assert info.value.field == "kind" and info.value.value == 9 and info.value.offset == 1


def test_bad_enum_value_names_field_value_and_offset() -> None:
    payload = bytearray(encode(FaultRaised(fault=FaultCode.STUCK_PUMP, measured_level=3), 1))
    payload[5] = 0xEE
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    err = info.value
    assert (err.field, err.value, err.offset) == ("fault", 0xEE, 5)
    assert "FaultRaised.fault" in str(err) and "offset 5" in str(err)


def test_model_level_rules_hold_at_decode() -> None:
    with pytest.raises(BadField) as info:
        decode(bytes([1, Kind.REQUEST, 0, 0, Opcode.HELLO, 3, 2]))
    assert info.value.field == "max_version" and info.value.offset == 6
    body = LoadBegin(actuator=1, segment_count=1, total_ms=1, cap_level=1, frequency_dhz=0)
    payload = bytearray(encode(body, 0))
    payload[14] = 5
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    assert info.value.field == "frequency_dhz"


def test_strings_round_trip_including_multibyte_utf8() -> None:
    message = _info(model="ü" * 16, firmware_version="", serial="SN-1")
    assert decode(encode(message, 4)).message == message


def test_string_longer_than_32_bytes_is_refused_both_ways() -> None:
    with pytest.raises(ValidationError):
        _info(model="ü" * 17)
    payload = bytearray(encode(_info(model="x"), 1))
    payload[13] = 33
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    assert info.value.field == "model" and info.value.offset == 13


def test_invalid_utf8_is_a_bad_field() -> None:
    payload = bytearray(encode(_info(model="ab"), 1))
    payload[14] = 0xFF
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    assert info.value.field == "model" and "UTF-8" in str(info.value)


def test_string_running_past_the_end_is_truncated() -> None:
    payload = encode(_info(serial="abcdef"), 1)
    with pytest.raises(TruncatedFrame):
        decode(payload[:-2])
    with pytest.raises(TruncatedFrame):
        decode(payload[: payload.index(b"1.0.0") - 1])


def test_oversize_payload_is_refused_before_parsing() -> None:
    with pytest.raises(OversizeFrame) as info:
        decode(encode(Start(), 1) + bytes(MAX_PAYLOAD))
    assert info.value.limit == MAX_PAYLOAD


def test_encode_refuses_seq_and_version_out_of_range() -> None:
    for seq in (-1, 0x10000):
        with pytest.raises(BadField) as info:
            encode(Start(), seq)
        assert info.value.field == "seq"
    for version in (0, 0x80):
        with pytest.raises(BadField):
            encode(Start(), 0, version=version)


def test_try_decode_returns_the_error() -> None:
    assert isinstance(try_decode(b"\x01"), TruncatedFrame)
    assert try_decode(encode(Estop(), 3)).message == Estop()  # type: ignore[union-attr]


def test_requests_name_their_reply() -> None:
    assert Hello.response_type is HelloResponse
    assert Info.response_type is InfoResponse
    assert Status.response_type is StatusResponse
    assert SetLimits.response_type is Ack


def test_payload_sizes_fit_a_default_ble_write_except_info_and_status() -> None:
    assert (
        len(
            encode(
                Telemetry(
                    t_ms=2**32 - 1,
                    measured_level=-1,
                    target_level=1,
                    state=2,
                    segment_index=1,
                    battery_percent=1,
                    flags=1,
                ),
                1,
            )
        )
        == 20
    )
    assert (
        len(
            encode(
                StatusResponse(
                    result=0,
                    state=0,
                    elapsed_ms=0,
                    segment_index=0,
                    measured_level=0,
                    target_level=0,
                    battery_percent=0,
                    active_cap=0,
                    fault=0,
                ),
                1,
            )
        )
        == 23
    )
    longest = _info(model="x" * 32, firmware_version="y" * 32, serial="z" * 32)
    assert len(encode(longest, 1)) <= MAX_PAYLOAD


def test_bools_and_floats_are_not_integers() -> None:
    with pytest.raises(ValidationError):
        SetLimits(cap_level=True)
    with pytest.raises(ValidationError):
        SetLimits.model_validate({"cap_level": 5.0})


def test_messages_are_frozen_and_forbid_extra_fields() -> None:
    limits = SetLimits(cap_level=1)
    with pytest.raises(ValidationError):
        limits.cap_level = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        SetLimits.model_validate({"cap_level": 1, "extra": 2})


@pytest.mark.parametrize("bits", [-1, 0x100, 0x40])
def test_flag_fields_refuse_ints_outside_u8_and_undefined_bits(bits: int) -> None:
    with pytest.raises(ValidationError, match="flags"):
        _sample(flags=bits)


def test_flag_fields_take_a_wire_int_as_the_same_member() -> None:
    assert _sample(flags=5).flags is _sample(flags=TelemetryFlags(5)).flags
    assert _sample(flags=0).flags == TelemetryFlags(0)


def _sample(**fields: object) -> Telemetry:
    base = {"t_ms": 1, "measured_level": 0, "target_level": 0, "state": 0}
    return Telemetry.model_validate({**base, "segment_index": 0, "battery_percent": 50, **fields})
