"""BLE segmentation: payloads larger than one ATT write travel as numbered chunks.

A payload that fits (`len <= chunk_size`, normally ATT_MTU - 3) goes as-is; its first byte
is the protocol version (0x01..0x7F). A larger payload is cut into chunks, each with a
1-byte header whose bit 7 is always set, so the two cannot be confused:

    bit 7   1 = segment header
    bit 6   FIRST  (first chunk of a payload)
    bit 5   LAST   (last chunk of a payload)
    bits 0-4 rolling counter, +1 per chunk sent on this characteristic (mod 32)

The receiver drops a partial payload when a counter is skipped, a chunk arrives without
FIRST and nothing is pending, or the total would exceed MAX_PAYLOAD.
"""

from __future__ import annotations

from collections import deque

from acudevice.protocol.codes import MAX_PAYLOAD
from acudevice.protocol.errors import OversizeFrame, ProtocolError, TruncatedFrame

SEGMENT = 0x80
FIRST = 0x40
LAST = 0x20
COUNTER_MASK = 0x1F


class BadSegment(ProtocolError):
    """A chunk out of order or without a start; the partial payload was dropped."""


class Segmenter:
    """Cuts outgoing payloads for one characteristic; keeps the rolling counter."""

    def __init__(self, chunk_size: int) -> None:
        if chunk_size < 2:
            raise ValueError(f"chunk_size {chunk_size} leaves no room for data")
        self.chunk_size = chunk_size
        self._counter = 0

    def split(self, payload: bytes) -> list[bytes]:
        if not payload:
            raise TruncatedFrame("payload", needed=1, got=0, offset=0)
        if len(payload) > MAX_PAYLOAD:
            raise OversizeFrame(len(payload), MAX_PAYLOAD)
        if len(payload) <= self.chunk_size:
            return [payload]
        step = self.chunk_size - 1
        chunks: list[bytes] = []
        for start in range(0, len(payload), step):
            head = SEGMENT | self._counter
            if start == 0:
                head |= FIRST
            if start + step >= len(payload):
                head |= LAST
            chunks.append(bytes((head,)) + payload[start : start + step])
            self._counter = (self._counter + 1) & COUNTER_MASK
        return chunks


class Reassembler:
    """Joins incoming chunks; like `Deframer`, records errors instead of raising."""

    def __init__(self, *, max_errors: int = 64) -> None:
        self._parts = bytearray()
        self._pending = False
        self._last_counter = 0
        self.errors: deque[ProtocolError] = deque(maxlen=max_errors)
        self.error_count = 0

    def feed(self, chunk: bytes) -> bytes | None:
        """The whole payload once its last chunk arrives, else None."""
        if not chunk:
            return None
        head = chunk[0]
        if not head & SEGMENT:
            if self._pending:
                self._fail(BadSegment("unsegmented payload inside a segmented one"))
            return bytes(chunk)
        counter = head & COUNTER_MASK
        if head & FIRST:
            if self._pending:
                self._fail(BadSegment("new FIRST chunk before the previous LAST"))
            self._parts = bytearray()
            self._pending = True
        elif not self._pending:
            self._record(BadSegment(f"chunk {counter} without a FIRST chunk"))
            return None
        elif counter != (self._last_counter + 1) & COUNTER_MASK:
            expected = (self._last_counter + 1) & COUNTER_MASK
            self._fail(BadSegment(f"chunk counter {counter}, expected {expected}"))
            return None
        self._last_counter = counter
        self._parts += chunk[1:]
        if len(self._parts) > MAX_PAYLOAD:
            self._fail(OversizeFrame(len(self._parts), MAX_PAYLOAD))
            return None
        if head & LAST:
            self._pending = False
            return bytes(self._parts)
        return None

    def _fail(self, error: ProtocolError) -> None:
        self._parts = bytearray()
        self._pending = False
        self._record(error)

    def _record(self, error: ProtocolError) -> None:
        self.errors.append(error)
        self.error_count += 1
