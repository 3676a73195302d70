"""Pure serial framing: payload + CRC-16, COBS-encoded, ended by one 0x00 byte.

    frame = COBS(payload || crc16_le(payload)) || 0x00

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR),
appended little-endian like every other field. COBS keeps 0x00 out of the frame body, so a
receiver that lost its place resynchronises at the next 0x00.
"""

from __future__ import annotations

import binascii
from collections import deque

from cobs import cobs

from acudevice.protocol.codes import MAX_PAYLOAD
from acudevice.protocol.errors import BadCobs, BadCrc, OversizeFrame, ProtocolError, TruncatedFrame

CRC_SIZE = 2
DELIMITER = b"\x00"
MAX_ENCODED = MAX_PAYLOAD + CRC_SIZE + 1
"""Largest COBS body (without delimiter): 130 bytes need one overhead byte."""
MAX_FRAME = MAX_ENCODED + 1
"""Largest frame on the wire, delimiter included (132)."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE; check value 0x29B1 for b"123456789"."""
    return binascii.crc_hqx(data, 0xFFFF)


def frame(payload: bytes) -> bytes:
    """The bytes to write for one payload, delimiter included."""
    if not payload:
        raise TruncatedFrame("payload", needed=1, got=0, offset=0)
    if len(payload) > MAX_PAYLOAD:
        raise OversizeFrame(len(payload), MAX_PAYLOAD)
    body = payload + crc16(payload).to_bytes(CRC_SIZE, "little")
    return bytes(cobs.encode(body)) + DELIMITER


def unframe(encoded: bytes, *, offset: int = 0) -> bytes:
    """Check one frame body (no delimiter) and return its payload; `offset` is for errors."""
    if len(encoded) > MAX_ENCODED:
        raise OversizeFrame(len(encoded), MAX_ENCODED, offset=offset)
    try:
        body = bytes(cobs.decode(encoded))
    except cobs.DecodeError as exc:
        raise BadCobs(f"bad COBS: {exc}", offset=offset) from None
    if len(body) <= CRC_SIZE:
        raise TruncatedFrame(
            "frame (payload + CRC)", needed=CRC_SIZE + 1, got=len(body), offset=offset
        )
    payload, trailer = body[:-CRC_SIZE], body[-CRC_SIZE:]
    expected, actual = crc16(payload), int.from_bytes(trailer, "little")
    if expected != actual:
        raise BadCrc(expected, actual, offset=offset)
    return payload


class Deframer:
    """Incremental receiver: feed it any chunks, get back whole good payloads.

    Bad frames never raise: each becomes a `ProtocolError` in `errors` (a bounded record of
    the latest ones; `error_count` keeps the total) and reading resumes at the next 0x00.
    Bytes beyond `MAX_ENCODED` without a delimiter are discarded as they arrive, so
    garbage cannot grow the buffer. Empty frames (0x00 0x00) are ignored: senders may
    prefix a 0x00 to flush a receiver's partial frame.
    """

    def __init__(self, *, max_errors: int = 64) -> None:
        self._buf = bytearray()
        self._discarding = False
        self._frame_start = 0
        self._pos = 0
        self.errors: deque[ProtocolError] = deque(maxlen=max_errors)
        self.error_count = 0
        self.frame_count = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Consume `data`; return the payloads completed by it, in order."""
        out: list[bytes] = []
        view = memoryview(data)
        start = 0
        while start < len(view):
            end = data.find(0, start)
            chunk_end = len(view) if end < 0 else end
            self._take(view[start:chunk_end])
            self._pos += chunk_end - start
            if end < 0:
                break
            self._close_frame(out)
            self._pos += 1
            start = end + 1
        return out

    @property
    def buffered(self) -> int:
        """Bytes held for the frame in progress (never more than MAX_ENCODED)."""
        return len(self._buf)

    def drain_errors(self) -> list[ProtocolError]:
        """Errors recorded since the last drain, oldest first."""
        drained = list(self.errors)
        self.errors.clear()
        return drained

    def _take(self, chunk: memoryview) -> None:
        if not chunk or self._discarding:
            return
        if len(self._buf) + len(chunk) > MAX_ENCODED:
            self._record(
                OversizeFrame(len(self._buf) + len(chunk), MAX_ENCODED, offset=self._frame_start)
            )
            self._buf.clear()
            self._discarding = True
            return
        self._buf += chunk

    def _close_frame(self, out: list[bytes]) -> None:
        if self._buf and not self._discarding:
            try:
                out.append(unframe(bytes(self._buf), offset=self._frame_start))
                self.frame_count += 1
            except ProtocolError as exc:
                self._record(exc)
        self._buf.clear()
        self._discarding = False
        self._frame_start = self._pos + 1

    def _record(self, error: ProtocolError) -> None:
        self.errors.append(error)
        self.error_count += 1
