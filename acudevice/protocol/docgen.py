"""The generated parts of docs/protocol.md: code tables, field tables, vectors.

`python -m acudevice.protocol.docgen [repo root]` rewrites `tests/vectors/*.json` and the
blocks between `<!-- generated:NAME -->` markers in `docs/protocol.md`. Tests compare the
doc and the JSON with what this module renders, so neither can drift from the models.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any

from annotated_types import Ge, Le

from acudevice.protocol import messages as m
from acudevice.protocol.codec import wire_layout
from acudevice.protocol.codes import (
    HEADER_SIZE,
    MAX_BATCH_SAMPLES,
    MAX_STRING_BYTES,
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
from acudevice.protocol.fields import Wire
from acudevice.protocol.vectors import SAMPLES, all_vectors, message_from_vector


def _spaced(hex_text: str) -> str:
    return " ".join(hex_text[i : i + 2] for i in range(0, len(hex_text), 2))


def _range_text(info: Any, wire: Wire) -> str:
    ann = info.annotation
    if isinstance(ann, type) and issubclass(ann, IntFlag):
        return f"bits of `{ann.__name__}`"
    if isinstance(ann, type) and issubclass(ann, IntEnum):
        return f"`{ann.__name__}`"
    if wire is Wire.STR:
        return f"u8 length 0..{MAX_STRING_BYTES}, then UTF-8"
    low = next((x.ge for x in info.metadata if isinstance(x, Ge)), None)
    high = next((x.le for x in info.metadata if isinstance(x, Le)), None)
    return f"{low}..{high}"


_TYPES = {Wire.U8: "u8", Wire.U16: "u16", Wire.I32: "i32", Wire.U32: "u32", Wire.STR: "str"}
_SIZES = {Wire.U8: 1, Wire.U16: 2, Wire.U32: 4, Wire.I32: 4}


def field_table(cls: type[m.Message]) -> str:
    rows = ["| offset | field | type | unit | range |", "|---|---|---|---|---|"]
    pos: int | str = HEADER_SIZE
    for name, wire in wire_layout(cls):
        info = cls.model_fields[name]
        unit = info.description or ""
        rows.append(f"| {pos} | `{name}` | {_TYPES[wire]} | {unit} | {_range_text(info, wire)} |")
        if isinstance(pos, int) and wire is not Wire.STR:
            pos += _SIZES[wire]
        else:
            pos = f"after `{name}`"
    return "\n".join(rows)


def render_messages() -> str:
    parts: list[str] = []
    groups: list[tuple[str, tuple[type[m.Message], ...]]] = [
        ("Requests (kind 1)", m.REQUESTS),
        ("Responses (kind 2)", (m.Ack, *m.TYPED_RESPONSES)),
        ("Events (kind 3)", m.EVENTS),
        ("Telemetry (kind 4)", (m.Telemetry, m.TelemetryBatch)),
    ]
    for title, classes in groups:
        parts.append(f"### {title}\n")
        for cls in classes:
            opcode = _opcode_text(cls)
            size = _size_text(cls)
            head = f"#### `{cls.__name__}` — opcode {opcode}, {size}"
            text = (cls.__doc__ or "").strip().splitlines()[0]
            if issubclass(cls, m.Request):
                reply = cls.response_type.__name__
                text += f" Reply: `{reply}`" + (
                    "." if reply == "Ack" else " (or `Ack` with a non-OK result)."
                )
            body = field_table(cls) if wire_layout(cls) else "No body."
            if cls is m.TelemetryBatch:
                body = _batch_table()
            parts.append(f"{head}\n\n{text}\n\n{body}\n")
    return "\n".join(parts)


def _opcode_text(cls: type[m.Message]) -> str:
    if issubclass(cls, (m.Request, m.TypedResponse, m.Event, m.Telemetry, m.TelemetryBatch)):
        return f"0x{int(cls.opcode):02X}"
    return "echoes the request"


def _batch_table() -> str:
    record = HEADER_SIZE + 1
    size = _record_size()
    return "\n".join(
        [
            "| offset | field | type | unit | range |",
            "|---|---|---|---|---|",
            f"| {HEADER_SIZE} | `count` | u8 | | 1..{MAX_BATCH_SAMPLES} |",
            f"| {record} + {size}·i | `samples[i]` | {size} bytes: a `Telemetry` body "
            "| | each field as in `Telemetry`; `t_ms` after the previous one (modulo 2^32) |",
        ]
    )


def _record_size() -> int:
    return sum(_SIZES[w] for _, w in wire_layout(m.Telemetry))


def _size_text(cls: type[m.Message]) -> str:
    if cls is m.TelemetryBatch:
        low = HEADER_SIZE + 1 + _record_size()
        return f"{low}..{low + (MAX_BATCH_SAMPLES - 1) * _record_size()} bytes"
    layout = wire_layout(cls)
    fixed = HEADER_SIZE + sum(_SIZES.get(w, 1) for _, w in layout)
    strings = sum(1 for _, w in layout if w is Wire.STR)
    if strings:
        return f"{fixed}..{fixed + MAX_STRING_BYTES * strings} bytes"
    return f"{fixed} bytes"


def render_codes() -> str:
    parts = []
    for enum in (
        Kind,
        Opcode,
        EventCode,
        TelemetryCode,
        Result,
        FirmwareState,
        FaultCode,
        Reason,
        ActuatorCode,
        ShapeCode,
        PhaseCode,
        Capabilities,
        TelemetryFlags,
        SafetyCapabilities,
    ):
        rows = [f"**`{enum.__name__}`**\n", "| value | name |", "|---|---|"]
        rows += [f"| 0x{int(v):02X} ({int(v)}) | `{v.name}` |" for v in enum]
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def _value_text(value: object) -> str:
    if isinstance(value, IntFlag):
        return "+".join(flag.name or "" for flag in value) or "0"
    if isinstance(value, IntEnum):
        return value.name
    return repr(value)


def _fields_text(message: m.Message) -> str:
    parts = [f"{k}={_value_text(getattr(message, k))}" for k in type(message).model_fields]
    if isinstance(message, m.Ack):
        parts = [f"opcode=0x{message.opcode:02X}", f"result={message.result.name}"]
    if isinstance(message, m.TelemetryBatch):
        first, last = message.samples[0], message.samples[-1]
        parts = [
            f"{len(message.samples)} samples",
            f"t_ms={first.t_ms}..{last.t_ms}",
            f"first: {_fields_text(first)}",
        ]
    return ", ".join(parts)


def render_vectors(data: dict[str, Any]) -> str:
    parts = []
    for group in SAMPLES:
        parts.append(f"**{group}** (`tests/vectors/{group}.json`)\n")
        parts.append("| vector | seq | message | payload hex |\n|---|---|---|---|")
        for v in data[group]:
            fields = _fields_text(message_from_vector(v))
            parts.append(
                f"| {v['name']} | {v['seq']} | `{v['type']}({fields})` | `{_spaced(v['hex'])}` |"
            )
        parts.append("")
    f = data["framing"]
    parts.append("**serial framing** (`tests/vectors/framing.json`)\n")
    parts.append(
        f"CRC check: crc16(`{_spaced(f['crc_check']['input'])}`) = "
        f"0x{f['crc_check']['crc16'].upper()}\n"
    )
    parts.append("| vector | payload | CRC | frame on the wire |\n|---|---|---|---|")
    for fr in f["frames"]:
        parts.append(
            f"| {fr['name']} | `{_spaced(fr['payload'])}` | 0x{fr['crc16'].upper()} | "
            f"`{_spaced(fr['frame'])}` |"
        )
    parts.append(
        f"\nResync ({f['resync']['note']}): stream `{_spaced(f['resync']['stream'])}` "
        f"yields exactly one payload, `{_spaced(f['resync']['payloads'][0])}`.\n"
    )
    return "\n".join(parts)


def render_blocks(vectors: dict[str, Any]) -> dict[str, str]:
    """Every generated block of the doc, keyed by marker name."""
    return {
        "codes": render_codes(),
        "messages": render_messages(),
        "vectors": render_vectors(vectors),
    }


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} -->", f"<!-- /generated:{name} -->"


def read_block(text: str, name: str) -> str:
    """The content between a block's markers, stripped."""
    start, end = _markers(name)
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def replace_block(text: str, name: str, content: str) -> str:
    start, end = _markers(name)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content.strip()}\n{end}{tail}"


def vector_files(vectors: dict[str, Any]) -> dict[str, str]:
    """File name -> exact JSON text for tests/vectors/."""
    return {
        f"{group}.json": json.dumps(content, indent=2) + "\n" for group, content in vectors.items()
    }


def main(root: Path) -> None:
    data = all_vectors()
    vec_dir = root / "tests" / "vectors"
    vec_dir.mkdir(parents=True, exist_ok=True)
    for name, text in vector_files(data).items():
        (vec_dir / name).write_text(text)
    doc = root / "docs" / "protocol.md"
    text = doc.read_text()
    for name, content in render_blocks(data).items():
        text = replace_block(text, name, content)
    doc.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
