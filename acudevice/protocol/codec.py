"""Pure codec: message objects to payload bytes and back. No I/O, no clocks, no state.

Payload = `version u8 | kind u8 | seq u16 | opcode u8 | body`, little-endian. Bodies are
laid out by `wire_layout`. A RESPONSE whose body is one byte is an `Ack`; longer
response bodies are the typed reply for the opcode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import ValidationError

from acudevice.protocol.batch import decode_batch_body, fast_sample, pack_batch, rows_of
from acudevice.protocol.codes import (
    HEADER_SIZE,
    MAX_PAYLOAD,
    MAX_STRING_BYTES,
    PROTOCOL_VERSION,
    EventCode,
    Kind,
    Opcode,
    TelemetryCode,
)
from acudevice.protocol.errors import (
    BadField,
    BadVersion,
    Header,
    OversizeFrame,
    ProtocolError,
    TrailingBytes,
    TruncatedFrame,
    UnknownOpcode,
)
from acudevice.protocol.fields import Wire
from acudevice.protocol.messages import (
    EVENTS,
    REQUESTS,
    TYPED_RESPONSES,
    Ack,
    Message,
    Telemetry,
    TelemetryBatch,
)

_HEADER = struct.Struct("<BBHB")


@cache
def wire_layout(cls: type[Message]) -> tuple[tuple[str, Wire], ...]:
    """(field name, encoding) for each body field, in wire order.

    `Ack.opcode` has no `Wire` marker: it travels in the header, not the body.
    """
    layout: list[tuple[str, Wire]] = []
    for name, info in cls.model_fields.items():
        marks = [m for m in info.metadata if isinstance(m, Wire)]
        if marks:
            layout.append((name, marks[0]))
    return tuple(layout)


_BY_KEY: dict[tuple[Kind, int], type[Message]] = {
    **{(Kind.REQUEST, int(c.opcode)): c for c in REQUESTS},
    **{(Kind.RESPONSE, int(c.opcode)): c for c in TYPED_RESPONSES},
    **{(Kind.EVENT, int(c.opcode)): c for c in EVENTS},
    (Kind.TELEMETRY, int(TelemetryCode.SAMPLE)): Telemetry,
    (Kind.TELEMETRY, int(TelemetryCode.BATCH)): TelemetryBatch,
}
_ACK_ONLY = frozenset(int(c.opcode) for c in REQUESTS if c.response_type is Ack)


@dataclass(frozen=True)
class Envelope:
    """A decoded payload: header fields plus the message they carried."""

    version: int
    kind: Kind
    seq: int
    opcode: int
    message: Message


def message_class(kind: Kind, opcode: int) -> type[Message] | None:
    """The class for (kind, opcode), or None; `Ack` is chosen by body length instead."""
    return _BY_KEY.get((kind, opcode))


def opcode_name(kind: int, opcode: int) -> str:
    """A readable name for logs ("START", "STATE_CHANGED"), or the hex value."""
    table: type[Opcode] | type[EventCode] | type[TelemetryCode]
    table = {3: EventCode, 4: TelemetryCode}.get(kind, Opcode)  # type: ignore[assignment]
    try:
        return table(opcode).name
    except ValueError:
        return f"0x{opcode:02X}"


# ---------------------------------------------------------------- encode


@cache
def _fixed_struct(cls: type[Message]) -> struct.Struct | None:
    """One precompiled struct for bodies without strings (all but INFO)."""
    layout = wire_layout(cls)
    if any(wire is Wire.STR for _, wire in layout):
        return None
    return struct.Struct("<" + "".join(wire.value for _, wire in layout))


def encode(message: Message, seq: int, *, version: int = PROTOCOL_VERSION) -> bytes:
    """Payload bytes for `message`; `seq` is the request's (or the device's event) counter."""
    if not 0 <= seq <= 0xFFFF:
        raise BadField("seq", seq, "must fit in u16 (0..65535)")
    if not 1 <= version <= 0x7F:
        raise BadField("version", version, "must be 1..127 (0x80.. marks BLE segments)")
    if isinstance(message, TelemetryBatch):  # a repeated record: its own packer
        return pack_batch(rows_of(message), seq, version=version)
    head = _HEADER.pack(version, int(message.kind), seq, message.wire_opcode())
    cls = type(message)
    fixed = _fixed_struct(cls)
    values = [
        int(getattr(message, name)) if wire is not Wire.STR else getattr(message, name)
        for name, wire in wire_layout(cls)
    ]
    if fixed is not None:
        payload = head + fixed.pack(*values)
    else:
        parts = [head]
        for (_, wire), value in zip(wire_layout(cls), values, strict=True):
            if wire is Wire.STR:
                raw = str(value).encode("utf-8")
                parts.append(bytes((len(raw),)) + raw)
            else:
                parts.append(struct.pack("<" + wire.value, value))
        payload = b"".join(parts)
    if len(payload) > MAX_PAYLOAD:
        raise OversizeFrame(len(payload), MAX_PAYLOAD)
    return payload


# ---------------------------------------------------------------- decode


def decode_header(payload: bytes) -> Header:
    """The raw header; raises `TruncatedFrame` when fewer than five bytes arrived."""
    if len(payload) < HEADER_SIZE:
        raise TruncatedFrame("header", needed=HEADER_SIZE, got=len(payload), offset=0)
    version, kind, seq, opcode = _HEADER.unpack_from(payload)
    return Header(version=version, kind=kind, seq=seq, opcode=opcode)


def decode(payload: bytes) -> Envelope:
    """Check and decode one payload; every failure is a `ProtocolError` subclass."""
    if len(payload) > MAX_PAYLOAD:
        raise OversizeFrame(len(payload), MAX_PAYLOAD)
    header = decode_header(payload)
    if header.version != PROTOCOL_VERSION:
        raise BadVersion(header.version, PROTOCOL_VERSION, header=header)
    try:
        kind = Kind(header.kind)
    except ValueError:
        raise BadField(
            "kind", header.kind, "not a known kind (1..4)", offset=1, header=header
        ) from None
    body = payload[HEADER_SIZE:]
    if kind is Kind.RESPONSE and not body:
        raise TruncatedFrame("response result", needed=1, got=0, offset=HEADER_SIZE, header=header)
    is_ack = kind is Kind.RESPONSE and len(body) == 1
    cls: type[Message] | None = Ack if is_ack else message_class(kind, header.opcode)
    if cls is None:
        if kind is Kind.RESPONSE and header.opcode in _ACK_ONLY:
            name = opcode_name(kind, header.opcode)
            raise TrailingBytes(
                f"{name} reply (an Ack)", extra=len(body) - 1, offset=HEADER_SIZE + 1, header=header
            )
        raise UnknownOpcode(header)
    if cls is Telemetry and (sample := fast_sample(payload)) is not None:  # the hot path
        return Envelope(header.version, kind, header.seq, header.opcode, sample)
    if cls is TelemetryBatch:  # a repeated record: its own fast reader
        batch = decode_batch_body(payload, header)
        return Envelope(header.version, kind, header.seq, header.opcode, batch)
    values = _read_body(cls, payload, header)
    if cls is Ack:
        values["opcode"] = header.opcode
    message = _validate(cls, values, header)
    return Envelope(header.version, kind, header.seq, header.opcode, message)


def _read_body(cls: type[Message], payload: bytes, header: Header) -> dict[str, Any]:
    name = cls.__name__
    fixed = _fixed_struct(cls)
    layout = wire_layout(cls)
    if fixed is not None:
        got = len(payload) - HEADER_SIZE
        if got < fixed.size:
            raise TruncatedFrame(
                f"{name} body", needed=fixed.size, got=got, offset=HEADER_SIZE, header=header
            )
        if got > fixed.size:
            raise TrailingBytes(
                f"{name} body",
                extra=got - fixed.size,
                offset=HEADER_SIZE + fixed.size,
                header=header,
            )
        return dict(
            zip((n for n, _ in layout), fixed.unpack_from(payload, HEADER_SIZE), strict=True)
        )
    values: dict[str, Any] = {}
    pos = HEADER_SIZE
    for field, wire in layout:
        if wire is Wire.STR:
            values[field], pos = _read_string(payload, pos, field, name, header)
            continue
        size = struct.calcsize("<" + wire.value)
        if len(payload) - pos < size:
            raise TruncatedFrame(
                f"{name}.{field}", needed=size, got=len(payload) - pos, offset=pos, header=header
            )
        (values[field],) = struct.unpack_from("<" + wire.value, payload, pos)
        pos += size
    if pos != len(payload):
        raise TrailingBytes(f"{name} body", extra=len(payload) - pos, offset=pos, header=header)
    return values


def _read_string(
    payload: bytes, pos: int, field: str, name: str, header: Header
) -> tuple[str, int]:
    if pos >= len(payload):
        raise TruncatedFrame(f"{name}.{field} length", needed=1, got=0, offset=pos, header=header)
    size = payload[pos]
    if size > MAX_STRING_BYTES:
        raise BadField(
            field,
            size,
            f"string length above {MAX_STRING_BYTES}",
            offset=pos,
            header=header,
            message_name=name,
        )
    raw = payload[pos + 1 : pos + 1 + size]
    if len(raw) < size:
        raise TruncatedFrame(
            f"{name}.{field}", needed=size, got=len(raw), offset=pos + 1, header=header
        )
    try:
        return raw.decode("utf-8"), pos + 1 + size
    except UnicodeDecodeError as exc:
        raise BadField(
            field,
            raw,
            f"not UTF-8 ({exc.reason})",
            offset=pos + 1,
            header=header,
            message_name=name,
        ) from None


def _validate(cls: type[Message], values: dict[str, Any], header: Header) -> Message:
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "body"
        raise BadField(
            field,
            first.get("input"),
            first["msg"],
            offset=_field_offset(cls, field, values),
            header=header,
            message_name=cls.__name__,
        ) from None


def _field_offset(cls: type[Message], field: str, values: dict[str, Any]) -> int | None:
    pos = HEADER_SIZE
    for name, wire in wire_layout(cls):
        if name == field:
            return pos
        if wire is Wire.STR:
            pos += 1 + len(str(values.get(name, "")).encode("utf-8"))
        else:
            pos += struct.calcsize("<" + wire.value)
    return None


def try_decode(payload: bytes) -> Envelope | ProtocolError:
    """`decode`, returning the error instead of raising it (handy in stream loops)."""
    try:
        return decode(payload)
    except ProtocolError as exc:
        return exc
