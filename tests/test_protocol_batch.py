"""TELEMETRY_BATCH: the fast reader agrees with pydantic on every sample, good or bad."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from acudevice.protocol import (
    BadField,
    FirmwareState,
    ProtocolError,
    Telemetry,
    TelemetryBatch,
    TelemetryFlags,
    TrailingBytes,
    TruncatedFrame,
    decode,
    encode,
    encode_telemetry_records,
    encode_telemetry_rows,
)
from acudevice.protocol.batch import RECORD as RECORD_STRUCT
from acudevice.protocol.batch import rows_of
from tests.test_protocol_properties import batch_strategy, message_strategy

pytestmark = pytest.mark.unit

RECORD = 15
FIRST = 6  # header 5 + count 1


@settings(max_examples=200)
@given(batch_strategy(), st.integers(0, 0xFFFF))
def test_a_batch_decodes_to_the_samples_each_sent_alone(batch: TelemetryBatch, seq: int) -> None:
    payload = encode(batch, seq)
    decoded = decode(payload).message
    assert isinstance(decoded, TelemetryBatch)
    alone = [decode(encode(sample, seq)).message for sample in batch.samples]
    assert list(decoded.samples) == alone
    validated = [
        Telemetry.model_validate(dict(zip(Telemetry.model_fields, r, strict=True)))
        for r in rows_of(batch)
    ]
    assert list(decoded.samples) == validated, "what pydantic builds from the same fields"
    for got in decoded.samples:
        assert type(got.state) is FirmwareState and type(got.flags) is TelemetryFlags
    rows = rows_of(batch)
    if len(rows) > 1:  # the firmware's fast encoder gives the same bytes
        assert encode_telemetry_rows(rows, seq) == payload
    else:
        assert encode_telemetry_rows(rows, seq) == encode(batch.samples[0], seq)


BAD_VALUES = [
    ("state", 10, "B", 6),
    ("state", 10, "B", 255),
    ("battery_percent", 13, "B", 101),
    ("flags", 14, "B", 0x40),
    ("flags", 14, "B", 0x80),
]


@settings(max_examples=60)
@given(batch_strategy(), st.data())
@pytest.mark.parametrize(("field", "offset", "fmt", "value"), BAD_VALUES)
def test_an_out_of_range_record_is_refused_where_pydantic_refuses_the_sample(
    field: str, offset: int, fmt: str, value: int, batch: TelemetryBatch, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(batch.samples) - 1))
    sample = batch.samples[index]
    alone = bytearray(encode(sample, 1))
    struct.pack_into("<" + fmt, alone, 5 + offset, value)
    with pytest.raises(BadField) as single:
        decode(bytes(alone))
    payload = bytearray(encode(batch, 1))
    at = FIRST + RECORD * index + offset
    struct.pack_into("<" + fmt, payload, at, value)
    with pytest.raises(BadField) as batched:
        decode(bytes(payload))
    assert batched.value.field == f"samples[{index}].{single.value.field}"
    assert batched.value.field == f"samples[{index}].{field}"
    assert batched.value.value == single.value.value == value
    assert batched.value.reason == single.value.reason
    assert batched.value.offset == at
    assert single.value.offset == 5 + offset


@pytest.mark.parametrize("count", [0, 9, 255])
def test_count_outside_one_to_eight_is_a_bad_field(count: int) -> None:
    payload = bytearray(encode(_batch(8), 1))
    payload[5] = count
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    assert (info.value.field, info.value.value, info.value.offset) == ("count", count, 5)
    assert "TelemetryBatch.count" in str(info.value)


def test_every_truncation_and_any_extra_byte_is_reported_with_its_offset() -> None:
    payload = encode(_batch(3), 9)
    for cut in range(5, len(payload)):
        with pytest.raises(TruncatedFrame) as info:
            decode(payload[:cut])
        assert info.value.offset == 5
        assert info.value.header is not None and info.value.header.seq == 9
    with pytest.raises(TrailingBytes) as extra:
        decode(payload + b"\x00\x01")
    assert (extra.value.extra, extra.value.offset) == (2, len(payload))


def test_t_ms_must_rise_within_a_batch_but_may_wrap() -> None:
    wrapped = TelemetryBatch(samples=(_one(0xFFFF_FF9C), _one(0)))
    assert decode(encode(wrapped, 1)).message == wrapped
    with pytest.raises(ValidationError):
        TelemetryBatch(samples=(_one(500), _one(500)))
    payload = bytearray(encode(_batch(3), 1))
    struct.pack_into("<I", payload, FIRST + 2 * RECORD, 0)  # third sample goes back in time
    with pytest.raises(BadField) as info:
        decode(bytes(payload))
    assert (info.value.field, info.value.offset) == ("samples[2].t_ms", FIRST + 2 * RECORD)


def test_batch_size_limits_hold_at_construction_and_in_the_fast_encoder() -> None:
    with pytest.raises(ValidationError):
        TelemetryBatch(samples=())
    with pytest.raises(ValidationError):
        TelemetryBatch(samples=tuple(_one(100 * i) for i in range(9)))
    with pytest.raises(ProtocolError):
        encode_telemetry_rows([], 1)
    assert len(encode(_batch(8), 1)) == 126


@settings(max_examples=100)
@given(message_strategy(Telemetry), st.integers(0, 0xFFFF))
def test_one_row_is_the_same_sample_payload_pydantic_encodes(sample: Telemetry, seq: int) -> None:
    rows = rows_of(TelemetryBatch(samples=(sample,)))
    assert encode_telemetry_rows(rows, seq) == encode(sample, seq)


def _one(t_ms: int) -> Telemetry:
    return Telemetry(
        t_ms=t_ms,
        measured_level=12000,
        target_level=12000,
        state=FirmwareState.RUNNING,
        segment_index=0,
        battery_percent=50,
        flags=TelemetryFlags.PUMP_ON,
    )


def _batch(n: int) -> TelemetryBatch:
    return TelemetryBatch(samples=tuple(_one(1000 + 100 * i) for i in range(n)))


@settings(max_examples=100)
@given(batch_strategy(), st.integers(0, 0xFFFF))
def test_records_packed_one_by_one_make_the_same_payload(batch: TelemetryBatch, seq: int) -> None:
    """The simulated firmware packs each sample as it takes it, then joins the batch."""
    rows = rows_of(batch)
    records = [RECORD_STRUCT.pack(*row) for row in rows]
    assert encode_telemetry_records(records, seq) == encode_telemetry_rows(rows, seq)
    assert encode_telemetry_records(records, seq) == encode(
        batch if len(rows) > 1 else batch.samples[0], seq
    )


def test_packed_records_refuse_an_empty_or_oversized_batch() -> None:
    with pytest.raises(ProtocolError):
        encode_telemetry_records([], 1)
    with pytest.raises(ProtocolError):
        encode_telemetry_records([RECORD_STRUCT.pack(100, 0, 0, 0, 0, 50, 0)] * 9, 1)


WIRE_RECORDS = st.tuples(
    st.integers(0, 2**32 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 0xFFFF),
    st.one_of(st.sampled_from([int(s) for s in FirmwareState]), st.integers(0, 0xFF)),
    st.integers(0, 0xFFFF),
    st.one_of(st.integers(0, 100), st.integers(0, 0xFF)),
    st.one_of(st.integers(0, 0x3F), st.integers(0, 0xFF)),
)


@settings(max_examples=500)
@given(WIRE_RECORDS, st.integers(0, 0xFFFF))
def test_a_sample_off_the_wire_is_the_model_validated_one(
    values: tuple[int, ...], seq: int
) -> None:
    """The decoder builds samples without calling the validator (batch.py says why); this
    holds it to the model: the same refusals, and samples equal in every way the model's
    own are. It fails loudly if pydantic changes how a model keeps its fields."""
    later = ((values[0] + 1) % 2**32, *values[1:])
    alone = encode_telemetry_rows([values], seq)  # type: ignore[list-item]
    two = encode_telemetry_rows([values, later], seq)  # type: ignore[list-item]
    fields = dict(zip(Telemetry.model_fields, values, strict=True))
    try:
        expected = Telemetry.model_validate(fields)
    except ValidationError:
        with pytest.raises(BadField):
            decode(alone)
        with pytest.raises(BadField, match=r"samples\[0\]"):
            decode(two)
        return
    got = decode(alone).message
    assert isinstance(got, Telemetry)
    _same_model(got, expected)
    batch = decode(two).message
    assert isinstance(batch, TelemetryBatch)
    _same_model(
        batch,
        TelemetryBatch(
            samples=(
                expected,
                Telemetry.model_validate(dict(zip(Telemetry.model_fields, later, strict=True))),
            )
        ),
    )
    _same_model(batch.samples[0], expected)


def _same_model(got: BaseModel, expected: BaseModel) -> None:
    assert type(got) is type(expected)
    assert got == expected and hash(got) == hash(expected) and repr(got) == repr(expected)
    assert got.__dict__ == expected.__dict__
    assert {k: type(v) for k, v in got.__dict__.items()} == {
        k: type(v) for k, v in expected.__dict__.items()
    }
    assert got.model_fields_set == expected.model_fields_set
    assert got.model_dump() == expected.model_dump()
    assert got.model_dump_json() == expected.model_dump_json()
    assert got.model_copy(update={}) == expected
    with pytest.raises(ValidationError):  # frozen, like every message
        got.__setattr__("t_ms" if isinstance(got, Telemetry) else "samples", 0)
