"""Golden vectors pin the wire format both ways, and the doc shows exactly these bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acudevice.protocol import (
    EventCode,
    Opcode,
    ProtocolError,
    TelemetryCode,
    TrailingBytes,
    crc16,
    decode,
    encode,
    frame,
    message_class,
)
from acudevice.protocol.docgen import read_block, render_blocks, vector_files
from acudevice.protocol.framing import Deframer
from acudevice.protocol.vectors import all_vectors, message_from_vector

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
VECTOR_DIR = ROOT / "tests" / "vectors"
DOC = ROOT / "docs" / "protocol.md"
GROUPS = ("requests", "responses", "events", "telemetry")


def _load(group: str) -> Any:
    return json.loads((VECTOR_DIR / f"{group}.json").read_text())


def _message_vectors() -> list[dict[str, Any]]:
    return [v for group in GROUPS for v in _load(group)]


@pytest.mark.parametrize("vector", _message_vectors(), ids=lambda v: v["name"])
def test_encode_matches_golden_bytes(vector: dict[str, Any]) -> None:
    message = message_from_vector(vector)
    assert encode(message, vector["seq"]).hex() == vector["hex"]


@pytest.mark.parametrize("vector", _message_vectors(), ids=lambda v: v["name"])
def test_decode_of_golden_bytes_gives_the_message(vector: dict[str, Any]) -> None:
    envelope = decode(bytes.fromhex(vector["hex"]))
    assert envelope.message == message_from_vector(vector)
    assert type(envelope.message).__name__ == vector["type"]
    assert envelope.seq == vector["seq"]
    assert envelope.kind.name == vector["kind"]


def test_every_opcode_has_a_request_and_a_response_vector() -> None:
    requests = {decode(bytes.fromhex(v["hex"])).opcode for v in _load("requests")}
    responses = {decode(bytes.fromhex(v["hex"])).opcode for v in _load("responses")}
    assert requests == {int(op) for op in Opcode}
    assert {int(op) for op in Opcode} <= responses


def test_every_event_and_telemetry_opcode_has_a_vector() -> None:
    events = {decode(bytes.fromhex(v["hex"])).opcode for v in _load("events")}
    samples = {decode(bytes.fromhex(v["hex"])).opcode for v in _load("telemetry")}
    assert events == {int(op) for op in EventCode}
    assert samples == {int(op) for op in TelemetryCode}


def test_every_message_class_appears_in_the_vectors() -> None:
    named = {v["type"] for v in _message_vectors()}
    from acudevice.protocol import messages as m

    classes = {c.__name__ for c in (*m.REQUESTS, *m.TYPED_RESPONSES, *m.EVENTS)}
    assert classes | {"Ack", "Telemetry", "TelemetryBatch"} <= named


def test_opcode_table_covers_every_request() -> None:
    from acudevice.protocol import Kind

    for op in Opcode:
        assert message_class(Kind.REQUEST, op) is not None


def test_framing_vectors() -> None:
    data = _load("framing")
    check = data["crc_check"]
    assert crc16(bytes.fromhex(check["input"])) == int(check["crc16"], 16) == 0x29B1
    for vector in data["frames"]:
        payload = bytes.fromhex(vector["payload"])
        assert crc16(payload) == int(vector["crc16"], 16)
        assert frame(payload).hex() == vector["frame"]
        assert Deframer().feed(bytes.fromhex(vector["frame"])) == [payload]
    assert any(
        "00" in [p[i : i + 2] for i in range(0, len(p), 2)]
        for p in (v["payload"] for v in data["frames"])
    )
    deframer = Deframer()
    got = deframer.feed(bytes.fromhex(data["resync"]["stream"]))
    assert [p.hex() for p in got] == data["resync"]["payloads"]
    assert deframer.error_count == 1


def test_vector_files_are_what_the_codec_generates() -> None:
    """Fails when the codec changes without regenerating (python -m acudevice.protocol.docgen)."""
    for name, text in vector_files(all_vectors()).items():
        assert (VECTOR_DIR / name).read_text() == text, name


@pytest.mark.parametrize("block", ["codes", "messages", "vectors"])
def test_doc_blocks_match_the_code_and_the_json(block: str) -> None:
    on_disk = {g: _load(g) for g in (*GROUPS, "framing")}
    doc = DOC.read_text()
    assert read_block(doc, block) == render_blocks(on_disk)[block].strip()


def test_doc_shows_every_vector_hex() -> None:
    doc = DOC.read_text()
    for vector in _message_vectors():
        spaced = " ".join(vector["hex"][i : i + 2] for i in range(0, len(vector["hex"]), 2))
        assert f"`{spaced}`" in doc, vector["name"]


def test_doc_states_the_constants_the_code_uses() -> None:
    from acudevice.protocol import codes
    from acudevice.protocol.framing import MAX_ENCODED, MAX_FRAME

    doc = DOC.read_text()
    for uuid in (codes.BLE_SERVICE_UUID, codes.BLE_CONTROL_UUID, codes.BLE_EVENTS_UUID):
        assert f"`{uuid}`" in doc
    assert f"at most **{codes.MAX_PAYLOAD} bytes**" in doc
    assert f"at most **{MAX_ENCODED}** bytes" in doc
    assert f"at most **{MAX_FRAME}** bytes" in doc
    assert f"(0..{codes.MAX_STRING_BYTES})" in doc
    assert f"# acudevice wire protocol, version {codes.PROTOCOL_VERSION}" in doc


@pytest.mark.parametrize("vector", _message_vectors(), ids=lambda v: v["name"])
def test_one_extra_byte_after_any_message_is_refused(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["hex"]) + b"\x00"
    expected: type[ProtocolError] = ProtocolError if vector["type"] == "Ack" else TrailingBytes
    with pytest.raises(expected) as info:
        decode(payload)
    if expected is TrailingBytes:
        assert info.value.offset == len(payload) - 1
