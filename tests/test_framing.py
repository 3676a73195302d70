"""Serial framing: CRC-16, COBS, 0x00 delimiters, and a Deframer that never raises."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.protocol import (
    MAX_ENCODED,
    MAX_FRAME,
    MAX_PAYLOAD,
    BadCobs,
    BadCrc,
    Deframer,
    OversizeFrame,
    ProtocolError,
    Start,
    TruncatedFrame,
    crc16,
    encode,
    frame,
    unframe,
)

pytestmark = pytest.mark.unit

payloads = st.binary(min_size=1, max_size=MAX_PAYLOAD)


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1


def test_crc_is_appended_little_endian_inside_cobs() -> None:
    payload = b"\x01\x02\x03"
    body = unframe_body(frame(payload))
    assert body == payload + crc16(payload).to_bytes(2, "little")


def unframe_body(wire: bytes) -> bytes:
    from cobs import cobs

    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    return bytes(cobs.decode(wire[:-1]))


def test_payload_with_zero_bytes_frames_without_inner_zeros() -> None:
    payload = encode(Start(), 7)
    assert b"\x00" in payload
    wire = frame(payload)
    assert wire.count(0) == 1 and wire[-1] == 0
    assert Deframer().feed(wire) == [payload]


def test_largest_payload_fits_the_maximum_frame() -> None:
    payload = bytes(range(1, 129))
    wire = frame(payload)
    assert len(wire) == MAX_FRAME
    assert frame(bytes(MAX_PAYLOAD))  # all zeros: COBS overhead is still one byte per zero
    assert len(frame(bytes(MAX_PAYLOAD))) <= MAX_FRAME
    assert Deframer().feed(wire) == [payload]


def test_frame_refuses_empty_and_oversize_payloads() -> None:
    with pytest.raises(TruncatedFrame):
        frame(b"")
    with pytest.raises(OversizeFrame):
        frame(bytes(MAX_PAYLOAD + 1))


def test_unframe_reports_each_fault() -> None:
    wire = frame(b"hello")[:-1]
    assert unframe(wire) == b"hello"
    broken = bytearray(wire)
    broken[2] ^= 0x01
    with pytest.raises(BadCrc) as crc:
        unframe(bytes(broken), offset=40)
    assert crc.value.offset == 40 and "CRC" in str(crc.value)
    with pytest.raises(BadCobs):
        unframe(b"\x09\x01")
    with pytest.raises(TruncatedFrame):
        unframe(b"\x03\x01\x02")
    with pytest.raises(OversizeFrame):
        unframe(b"\x01" * (MAX_ENCODED + 1))


def test_deframer_byte_by_byte_and_many_per_chunk() -> None:
    items = [encode(Start(), n) for n in range(5)]
    stream = b"".join(frame(p) for p in items)
    one = Deframer()
    got = [p for byte in stream for p in one.feed(bytes([byte]))]
    assert got == items
    assert Deframer().feed(stream) == items


def test_empty_frames_are_ignored_silently() -> None:
    deframer = Deframer()
    assert deframer.feed(b"\x00\x00" + frame(b"\x05") + b"\x00") == [b"\x05"]
    assert deframer.error_count == 0


def test_bad_frames_are_recorded_with_their_stream_offset() -> None:
    good = frame(b"\x11\x22")
    bad = bytearray(good)
    bad[1] ^= 0xFF
    deframer = Deframer()
    got = deframer.feed(b"\x07\x07\x00" + bytes(bad) + good)
    assert got == [b"\x11\x22"]
    errors = deframer.drain_errors()
    assert [type(e) for e in errors] == [BadCobs, BadCrc]
    assert [e.offset for e in errors] == [0, 3]
    assert deframer.drain_errors() == [] and deframer.error_count == 2


def test_oversize_garbage_is_discarded_without_growing_the_buffer() -> None:
    deframer = Deframer()
    for _ in range(100):
        assert deframer.feed(b"\x55" * 1000) == []
        assert deframer.buffered <= MAX_ENCODED
    assert deframer.error_count == 1
    assert isinstance(deframer.errors[0], OversizeFrame)
    assert deframer.feed(b"\x00" + frame(b"ok")) == [b"ok"]


def test_garbage_just_below_the_limit_then_a_delimiter_is_one_error() -> None:
    deframer = Deframer()
    assert deframer.feed(b"\x55" * MAX_ENCODED + b"\x00" + frame(b"x")) == [b"x"]
    assert deframer.error_count == 1


def test_error_record_is_bounded_but_counted() -> None:
    deframer = Deframer(max_errors=8)
    deframer.feed(b"\x01\x00" * 1000)
    assert len(deframer.errors) == 8 and deframer.error_count == 1000


@given(payloads)
def test_frame_round_trip(payload: bytes) -> None:
    wire = frame(payload)
    assert len(wire) <= MAX_FRAME and wire.count(0) == 1
    assert unframe(wire[:-1]) == payload


@given(st.lists(payloads, min_size=1, max_size=6), st.data())
def test_any_chunking_of_a_stream_yields_the_same_payloads(
    items: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(frame(p) for p in items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    deframer = Deframer()
    got: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += deframer.feed(stream[start:end])
    assert got == items and deframer.error_count == 0


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=400), max_size=8), payloads)
def test_random_garbage_never_raises_and_a_later_frame_is_recovered(
    garbage: list[bytes], payload: bytes
) -> None:
    deframer = Deframer()
    for chunk in garbage:
        deframer.feed(chunk)
        assert deframer.buffered <= MAX_ENCODED
    assert all(isinstance(e, ProtocolError) for e in deframer.errors)
    assert deframer.feed(b"\x00" + frame(payload)) == [payload]


@settings(max_examples=300)
@given(payloads, st.data())
def test_damaged_frames_never_raise(payload: bytes, data: st.DataObject) -> None:
    wire = bytearray(frame(payload))
    bit = data.draw(st.integers(0, (len(wire) - 1) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.integers(0, len(wire)))
    deframer = Deframer()
    for part in (bytes(wire), bytes(wire[:cut]) + b"\x00", bytes(wire[cut:])):
        for got in deframer.feed(part):
            assert isinstance(got, bytes)
    assert deframer.feed(b"\x00" + frame(payload)) == [payload]


@given(payloads, st.data())
def test_a_single_bit_flip_is_never_delivered_as_the_original(
    payload: bytes, data: st.DataObject
) -> None:
    wire = bytearray(frame(payload))
    bit = data.draw(st.integers(0, (len(wire) - 1) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    assert payload not in Deframer().feed(bytes(wire) + b"\x00")


def test_a_frame_cut_off_before_its_delimiter_also_costs_the_next_frame() -> None:
    """docs/protocol.md section 4 says so; a host resends rather than waits."""
    cut, lost, kept = (frame(bytes([1, 1, n, 0, 0x0B])) for n in (1, 2, 3))
    payloads = Deframer().feed(cut[:-4] + lost + kept)
    assert payloads == [bytes([1, 1, 3, 0, 0x0B])]
