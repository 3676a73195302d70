"""BLE segmentation: large payloads cross a 20-byte ATT write and come back whole."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acudevice.protocol import (
    MAX_PAYLOAD,
    BadSegment,
    OversizeFrame,
    Reassembler,
    Segmenter,
    StatusResponse,
    encode,
)
from acudevice.protocol.segmentation import FIRST, LAST, SEGMENT

pytestmark = pytest.mark.unit


def _status() -> bytes:
    return encode(
        StatusResponse(
            result=0,
            state=2,
            elapsed_ms=1,
            segment_index=0,
            measured_level=5,
            target_level=5,
            battery_percent=50,
            active_cap=10,
            fault=0,
        ),
        3,
    )


def test_small_payload_goes_unsegmented() -> None:
    payload = b"\x01" + bytes(19)
    assert Segmenter(20).split(payload) == [payload]
    assert Reassembler().feed(payload) == payload


def test_status_response_is_two_chunks_at_the_default_mtu() -> None:
    payload = _status()
    assert len(payload) == 23
    chunks = Segmenter(20).split(payload)
    assert [len(c) for c in chunks] == [20, 5]
    assert chunks[0][0] == SEGMENT | FIRST | 0 and chunks[1][0] == SEGMENT | LAST | 1
    assert chunks[0][1:] + chunks[1][1:] == payload
    joiner = Reassembler()
    assert joiner.feed(chunks[0]) is None
    assert joiner.feed(chunks[1]) == payload


@given(
    st.binary(min_size=1, max_size=MAX_PAYLOAD).map(lambda b: b"\x01" + b[1:]),
    st.integers(2, 64),
    st.integers(0, 40),
)
def test_round_trip_for_any_size_and_counter_position(
    payload: bytes, chunk: int, warmup: int
) -> None:
    cutter, joiner = Segmenter(chunk), Reassembler()
    for _ in range(warmup):
        for piece in cutter.split(b"\x01" * (chunk + 1)):
            joiner.feed(piece)
    out = [joiner.feed(piece) for piece in cutter.split(payload)]
    assert out[-1] == payload and all(x is None for x in out[:-1])
    assert all(len(piece) <= chunk for piece in cutter.split(payload))
    assert joiner.error_count == 0


def test_a_lost_chunk_drops_that_payload_and_the_next_one_arrives() -> None:
    cutter, joiner = Segmenter(20), Reassembler()
    big = bytes([1]) + bytes(range(1, 60))
    first = cutter.split(big)
    assert len(first) == 4
    for piece in (first[0], first[2], first[3]):
        assert joiner.feed(piece) is None
    assert isinstance(joiner.errors[0], BadSegment) and "expected" in str(joiner.errors[0])
    assert [joiner.feed(p) for p in cutter.split(big)][-1] == big


def test_chunk_without_first_is_recorded_and_ignored() -> None:
    joiner = Reassembler()
    assert joiner.feed(bytes([SEGMENT | LAST | 3, 1, 2])) is None
    assert joiner.error_count == 1


def test_reassembly_refuses_more_than_max_payload() -> None:
    joiner = Reassembler()
    joiner.feed(bytes([SEGMENT | FIRST | 0]) + bytes(100))
    assert joiner.feed(bytes([SEGMENT | 1]) + bytes(100)) is None
    assert isinstance(joiner.errors[-1], OversizeFrame)


def test_segmenter_refuses_oversize_and_tiny_chunks() -> None:
    with pytest.raises(OversizeFrame):
        Segmenter(20).split(bytes(MAX_PAYLOAD + 1))
    with pytest.raises(ValueError):
        Segmenter(1)
