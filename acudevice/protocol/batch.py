"""Telemetry on the hot path: batch bodies, and samples from plain int rows.

A TELEMETRY_BATCH body is `count u8` then `count` records, each exactly a SAMPLE body. The
generic layout code in `codec.py` cannot express a repeated record, and the host decodes
thousands of samples per second at speed=max, so this module unpacks with one precompiled
struct. The struct already bounds every field to its wire width, which is all but three of
the `Telemetry` model's rules; those three (a known state, known flag bits, battery at most
100 %) are checked here and the sample is built as `model_construct` builds one, in a
third of the model's validation time. A record that breaks any rule goes through the model
itself, so it is refused exactly as the same sample sent alone would be; a property test
(tests/test_protocol_batch.py) holds the two paths to the same samples and refusals.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from acudevice.protocol.codes import (
    HEADER_SIZE,
    MAX_BATCH_SAMPLES,
    PROTOCOL_VERSION,
    FirmwareState,
    Kind,
    TelemetryCode,
    TelemetryFlags,
)
from acudevice.protocol.errors import BadField, Header, TrailingBytes, TruncatedFrame
from acudevice.protocol.messages import Telemetry, TelemetryBatch, t_ms_after

TelemetryRow = tuple[int, int, int, int, int, int, int]
"""(t_ms, measured_level, target_level, state, segment_index, battery_percent, flags)."""

_SINGLE = struct.Struct("<BBHB" + "IiHBHBB")
RECORD = struct.Struct("<IiHBHBB")
"""One SAMPLE body: the 15 bytes after the header of a TELEMETRY SAMPLE payload."""
_FIELDS = tuple(Telemetry.model_fields)
_OFFSETS = (0, 4, 8, 10, 11, 13, 14)
_BATCH_STRUCTS = {
    n: struct.Struct("<BBHBB" + "IiHBHBB" * n) for n in range(1, MAX_BATCH_SAMPLES + 1)
}
_SAMPLE_HEAD = (PROTOCOL_VERSION, int(Kind.TELEMETRY))
_SAMPLE_HEADER = struct.Struct("<BBHB")
_BATCH_HEADER = struct.Struct("<BBHBB")
_TELEMETRY = int(Kind.TELEMETRY)
_BATCH = int(TelemetryCode.BATCH)
_SAMPLE = int(TelemetryCode.SAMPLE)
_STATES: dict[int, FirmwareState] = {int(state): state for state in FirmwareState}
_DEFINED_FLAGS = sum(int(flag) for flag in TelemetryFlags)
_FLAGS: dict[int, TelemetryFlags] = {
    bits: TelemetryFlags(bits) for bits in range(0x100) if not bits & ~_DEFINED_FLAGS
}
_new = object.__new__
_set = object.__setattr__
_validate: Callable[[object], Telemetry] = Telemetry.__pydantic_validator__.validate_python
"""`Telemetry.model_validate` without its Python wrapper: the same validation."""


def encode_telemetry_rows(rows: Sequence[TelemetryRow], seq: int) -> bytes:
    """One SAMPLE payload for one row, a BATCH for 2..8; the firmware's fast encoder.

    Rows are the firmware's own state, so only their wire widths are checked (by `struct`);
    `encode(TelemetryBatch(...))` is the validating path.
    """
    if len(rows) == 1:
        return _SINGLE.pack(*_SAMPLE_HEAD, seq, _SAMPLE, *rows[0])
    return pack_batch(rows, seq)


def encode_telemetry_records(records: Sequence[bytes], seq: int) -> bytes:
    """`encode_telemetry_rows` for rows already packed with `RECORD`: a firmware that packs
    each sample as it takes it only joins them when the batch goes out."""
    count = len(records)
    if count == 1:
        return _SAMPLE_HEADER.pack(*_SAMPLE_HEAD, seq, _SAMPLE) + records[0]
    if not 1 <= count <= MAX_BATCH_SAMPLES:
        raise BadField("count", count, f"must be 1..{MAX_BATCH_SAMPLES}")
    return _BATCH_HEADER.pack(*_SAMPLE_HEAD, seq, _BATCH, count) + b"".join(records)


def pack_batch(rows: Sequence[TelemetryRow], seq: int, *, version: int = PROTOCOL_VERSION) -> bytes:
    """A BATCH payload of 1..8 rows (the header's seq is the telemetry counter)."""
    count = len(rows)
    if not 1 <= count <= MAX_BATCH_SAMPLES:
        raise BadField("count", count, f"must be 1..{MAX_BATCH_SAMPLES}")
    flat = [v for row in rows for v in row]
    return _BATCH_STRUCTS[count].pack(version, _TELEMETRY, seq, _BATCH, count, *flat)


def rows_of(batch: TelemetryBatch) -> list[TelemetryRow]:
    return [
        (
            s.t_ms,
            s.measured_level,
            s.target_level,
            int(s.state),
            s.segment_index,
            s.battery_percent,
            int(s.flags),
        )
        for s in batch.samples
    ]


def decode_batch_body(payload: bytes, header: Header) -> TelemetryBatch:
    """The samples of a BATCH payload whose header was already checked."""
    name = "TelemetryBatch"
    got = len(payload) - HEADER_SIZE
    if got < 1:
        raise TruncatedFrame(f"{name}.count", needed=1, got=0, offset=HEADER_SIZE, header=header)
    count = payload[HEADER_SIZE]
    if not 1 <= count <= MAX_BATCH_SAMPLES:
        reason = f"must be 1..{MAX_BATCH_SAMPLES}"
        raise BadField("count", count, reason, offset=HEADER_SIZE, header=header, message_name=name)
    size = 1 + RECORD.size * count
    if got < size:
        raise TruncatedFrame(
            f"{name} body", needed=size, got=got, offset=HEADER_SIZE, header=header
        )
    if got > size:
        raise TrailingBytes(
            f"{name} body", extra=got - size, offset=HEADER_SIZE + size, header=header
        )
    samples = []
    previous: int | None = None
    start = HEADER_SIZE + 1
    for i, values in enumerate(RECORD.iter_unpack(payload[start:])):
        sample = _sample(values)
        if sample is None:
            try:
                sample = _validate(dict(zip(_FIELDS, values, strict=True)))
            except ValidationError as exc:
                raise _bad_record(exc, start + RECORD.size * i, i, header) from None
        t = values[0]
        if previous is not None and not t_ms_after(previous, t):
            raise BadField(
                f"samples[{i}].t_ms",
                t,
                f"not after samples[{i - 1}].t_ms ({previous}), counting modulo 2**32",
                offset=start + RECORD.size * i,
                header=header,
                message_name=name,
            )
        previous = t
        samples.append(sample)
    return _built(TelemetryBatch, {"samples": tuple(samples)})


def fast_sample(payload: bytes) -> Telemetry | None:
    """A SAMPLE payload's sample the same way (one struct, the model's validation); None
    when its body is not exactly 15 valid bytes (the generic reader then says what is wrong)."""
    if len(payload) != _SINGLE.size:
        return None
    values = RECORD.unpack_from(payload, HEADER_SIZE)
    sample = _sample(values)
    if sample is not None:
        return sample
    try:
        return _validate(dict(zip(_FIELDS, values, strict=True)))
    except ValidationError:
        return None


def _sample(values: tuple[int, ...]) -> Telemetry | None:
    """The sample of an unpacked record whose fields all meet the model's rules; None when
    one does not (the caller then asks the model, for its exact refusal)."""
    t_ms, measured, target, state, segment, battery, flags = values
    state_member = _STATES.get(state)
    flags_member = _FLAGS.get(flags)
    if state_member is None or flags_member is None or battery > 100:
        return None
    fields = {
        "t_ms": t_ms,
        "measured_level": measured,
        "target_level": target,
        "state": state_member,
        "segment_index": segment,
        "battery_percent": battery,
        "flags": flags_member,
    }
    return _built(Telemetry, fields)


_M = TypeVar("_M", bound=BaseModel)


def _built(cls: type[_M], fields: dict[str, Any]) -> _M:
    """A model from values known to meet its rules, with every field set, as
    `model_construct` builds it, less its per-field loop (which costs more than validating)."""
    model: _M = _new(cls)
    _set(model, "__dict__", fields)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


def _bad_record(exc: ValidationError, offset: int, index: int, header: Header) -> BadField:
    """The `BadField` a record gets: what pydantic says of it, where it sits in the payload."""
    first = exc.errors()[0]
    field = str(first["loc"][0])
    return BadField(
        f"samples[{index}].{field}",
        first.get("input"),
        first["msg"],
        offset=offset + _OFFSETS[_FIELDS.index(field)],
        header=header,
        message_name="TelemetryBatch",
    )
