"""Properties over every message type: round trips, range refusal, and fuzzed input.

Strategies are derived from the models' own field metadata, so a new message or field is
covered without editing this file.
"""

from __future__ import annotations

import functools
import operator
import struct
from enum import IntEnum, IntFlag
from typing import Any

import pytest
from annotated_types import Ge, Le
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from acudevice.protocol import (
    EVENTS,
    MAX_PAYLOAD,
    REQUESTS,
    TYPED_RESPONSES,
    Ack,
    BadField,
    Envelope,
    Message,
    ProtocolError,
    StatusResponse,
    Telemetry,
    TelemetryBatch,
    decode,
    encode,
    try_decode,
)
from acudevice.protocol.codec import wire_layout
from acudevice.protocol.fields import Wire
from acudevice.protocol.vectors import SAMPLES

pytestmark = pytest.mark.unit

ALL_CLASSES: tuple[type[Message], ...] = (
    *REQUESTS,
    *TYPED_RESPONSES,
    Ack,
    *EVENTS,
    Telemetry,
    TelemetryBatch,
)
WIDTH = {
    Wire.U8: (0, 0xFF),
    Wire.U16: (0, 0xFFFF),
    Wire.U32: (0, 2**32 - 1),
    Wire.I32: (-(2**31), 2**31 - 1),
}
SIZE = {Wire.U8: 1, Wire.U16: 2, Wire.U32: 4, Wire.I32: 4}


def _bounds(cls: type[Message], name: str) -> tuple[int | None, int | None]:
    meta = cls.model_fields[name].metadata
    low = next((m.ge for m in meta if isinstance(m, Ge)), None)
    high = next((m.le for m in meta if isinstance(m, Le)), None)
    return low, high


def _field_strategy(cls: type[Message], name: str) -> st.SearchStrategy[Any]:
    ann = cls.model_fields[name].annotation
    if isinstance(ann, type) and issubclass(ann, IntFlag):
        return st.sets(st.sampled_from(list(ann))).map(
            lambda flags, t=ann: functools.reduce(operator.or_, flags, t(0))
        )
    if isinstance(ann, type) and issubclass(ann, IntEnum):
        return st.sampled_from(list(ann))
    if ann is str:
        return st.text(max_size=32).filter(lambda t: len(t.encode("utf-8")) <= 32)
    low, high = _bounds(cls, name)
    return st.integers(low, high)


def _build(cls: type[Message], fields: dict[str, Any]) -> Message | None:
    try:
        return cls.model_validate(fields)
    except ValidationError:
        return None  # cross-field rules (min <= max, pressure has no frequency)


def batch_strategy() -> st.SearchStrategy[TelemetryBatch]:
    """1..8 valid samples whose t_ms rise by 1..2**31-1 ms each, wrapping at 2**32."""
    samples = st.lists(message_strategy(Telemetry), min_size=1, max_size=8)
    gaps = st.lists(st.integers(1, 2**31 - 1), min_size=7, max_size=7)

    def build(items: list[Message], steps: list[int]) -> TelemetryBatch:
        out, t = [], items[0].t_ms  # type: ignore[attr-defined]
        for i, item in enumerate(items):
            t = t if i == 0 else (t + steps[i - 1]) & 0xFFFF_FFFF
            out.append(item.model_copy(update={"t_ms": t}))
        return TelemetryBatch(samples=tuple(out))  # type: ignore[arg-type]

    return st.builds(build, samples, gaps)


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    if cls is TelemetryBatch:
        return batch_strategy()  # type: ignore[return-value]
    fields = {name: _field_strategy(cls, name) for name in cls.model_fields}
    return (
        st.fixed_dictionaries(fields).map(lambda f: _build(cls, f)).filter(lambda m: m is not None)  # type: ignore[return-value]
    )


any_message = st.one_of([message_strategy(cls) for cls in ALL_CLASSES])


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@settings(max_examples=150, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data(), seq=st.integers(0, 0xFFFF))
def test_round_trip_for_every_message_type(
    cls: type[Message], data: st.DataObject, seq: int
) -> None:
    message = data.draw(message_strategy(cls))
    payload = encode(message, seq)
    envelope = decode(payload)
    assert envelope.message == message
    assert type(envelope.message) is cls
    assert (envelope.seq, envelope.kind, envelope.opcode) == (seq, cls.kind, message.wire_opcode())
    assert len(payload) <= MAX_PAYLOAD
    if cls is TelemetryBatch:
        assert len(payload) == 6 + 15 * len(message.samples)  # type: ignore[attr-defined]
    elif not any(w is Wire.STR for _, w in wire_layout(cls)) and cls is not StatusResponse:
        assert len(payload) <= 20, "fixed messages fit one default-MTU BLE write"


def _invalid_values(cls: type[Message], name: str, wire: Wire) -> list[Any]:
    """Values the wire width can carry but the field must refuse."""
    ann = cls.model_fields[name].annotation
    low_w, high_w = WIDTH.get(wire, (0, 0))
    if isinstance(ann, type) and issubclass(ann, IntFlag):
        used = functools.reduce(operator.or_, (int(f) for f in ann), 0)
        return [bit for bit in (1 << i for i in range(8)) if not bit & used][:1]
    if isinstance(ann, type) and issubclass(ann, IntEnum):
        return [v for v in range(low_w, high_w + 1) if v not in set(ann)][:2]
    low, high = _bounds(cls, name)
    out = []
    if low is not None and low > low_w:
        out.append(low - 1)
    if high is not None and high < high_w:
        out.append(high + 1)
    return out


def _sample(cls: type[Message]) -> tuple[Message, int]:
    for group in SAMPLES.values():
        for _, seq, message in group:
            if type(message) is cls:
                return message, seq
    raise AssertionError(f"no sample for {cls.__name__}")


NARROW_FIELDS = [
    (cls, name, wire, value)
    for cls in ALL_CLASSES
    for name, wire in wire_layout(cls)
    if wire is not Wire.STR
    for value in _invalid_values(cls, name, wire)
]


def test_the_out_of_range_table_is_not_empty() -> None:
    fields = {(cls.__name__, name) for cls, name, _, _ in NARROW_FIELDS}
    assert ("Telemetry", "battery_percent") in fields
    assert ("LoadSegment", "duration_ms") in fields
    assert ("Telemetry", "flags") in fields
    assert len(fields) > 25


@pytest.mark.parametrize(
    ("cls", "name", "wire", "value"), NARROW_FIELDS, ids=lambda x: getattr(x, "__name__", str(x))
)
def test_out_of_range_field_is_refused_at_construction_and_at_decode(
    cls: type[Message], name: str, wire: Wire, value: int
) -> None:
    message, seq = _sample(cls)
    with pytest.raises(ValidationError) as construction:
        cls.model_validate({**message.model_dump(), name: value})
    assert construction.value.errors()[0]["loc"][0] == name

    offset = 5
    for field, field_wire in wire_layout(cls):
        if field == name:
            break
        if field_wire is Wire.STR:  # fields after a string (INFO's ramp limit) move with it
            offset += 1 + len(getattr(message, field).encode("utf-8"))
        else:
            offset += SIZE[field_wire]
    payload = bytearray(encode(message, seq))
    struct.pack_into("<" + wire.value, payload, offset, value)
    with pytest.raises(BadField) as decoding:
        decode(bytes(payload))
    assert decoding.value.field == name
    assert decoding.value.offset == offset
    assert decoding.value.value == value


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_integer_fields_refuse_values_beyond_their_wire_width(cls: type[Message]) -> None:
    message, _ = _sample(cls)
    for name, wire in wire_layout(cls):
        if wire is Wire.STR:
            continue
        low, high = WIDTH[wire]
        for value in (low - 1, high + 1):
            with pytest.raises(ValidationError):
                cls.model_validate({**message.model_dump(), name: value})


def _decodes_or_refuses(payload: bytes) -> bool:
    """True for an Envelope or a ProtocolError; any other exception propagates and fails."""
    return isinstance(try_decode(payload), Envelope | ProtocolError)


@settings(max_examples=600)
@given(st.binary(max_size=160))
def test_decode_of_random_bytes_raises_only_protocol_errors(blob: bytes) -> None:
    assert _decodes_or_refuses(blob)


@settings(max_examples=400)
@given(any_message, st.integers(0, 0xFFFF), st.data())
def test_decode_of_damaged_payloads_raises_only_protocol_errors(
    message: Message, seq: int, data: st.DataObject
) -> None:
    payload = bytearray(encode(message, seq))
    cut = data.draw(st.integers(0, len(payload)))
    assert _decodes_or_refuses(bytes(payload[:cut]))
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    payload[bit // 8] ^= 1 << (bit % 8)
    extra = data.draw(st.binary(max_size=4))
    for candidate in (bytes(payload), bytes(payload) + extra):
        assert _decodes_or_refuses(candidate)
