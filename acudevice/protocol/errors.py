"""What can be wrong with bytes from the wire, each saying what and where.

Every decoding or framing failure is a `ProtocolError`; nothing else escapes the codec or
the deframer. Errors found after the header was read carry it (`header`), so a device can
still answer the request by its seq and opcode.
"""

from __future__ import annotations

from dataclasses import dataclass

from acudevice.errors import AcuDeviceError


@dataclass(frozen=True)
class Header:
    """The five header bytes as raw numbers, before they were checked."""

    version: int
    kind: int
    seq: int
    opcode: int


class ProtocolError(AcuDeviceError):
    """Bytes that are not a valid frame or message."""

    def __init__(
        self, message: str, *, offset: int | None = None, header: Header | None = None
    ) -> None:
        self.offset = offset
        self.header = header
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")


class TruncatedFrame(ProtocolError):
    """Fewer bytes than the layout needs."""

    def __init__(
        self, what: str, *, needed: int, got: int, offset: int, header: Header | None = None
    ) -> None:
        self.what = what
        self.needed = needed
        self.got = got
        super().__init__(
            f"truncated: {what} needs {needed} byte(s), {got} left", offset=offset, header=header
        )


Truncated = TruncatedFrame


class TrailingBytes(ProtocolError):
    """More bytes than the layout of this message allows."""

    def __init__(self, what: str, *, extra: int, offset: int, header: Header | None) -> None:
        self.extra = extra
        super().__init__(f"{extra} unexpected byte(s) after {what}", offset=offset, header=header)


class OversizeFrame(ProtocolError):
    """A payload or frame larger than the protocol allows; it was discarded."""

    def __init__(self, size: int, limit: int, *, offset: int | None = None) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"oversize: {size} bytes exceeds the limit of {limit}", offset=offset)


class BadCrc(ProtocolError):
    """The CRC-16 trailer does not match the payload."""

    def __init__(self, expected: int, actual: int, *, offset: int | None = None) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"bad CRC: frame says 0x{actual:04X}, payload computes 0x{expected:04X}",
            offset=offset,
        )


class BadCobs(ProtocolError):
    """The frame is not valid COBS."""


class BadVersion(ProtocolError):
    """A payload of a protocol version this codec does not speak."""

    def __init__(self, version: int, supported: int, *, header: Header | None) -> None:
        self.version = version
        self.supported = supported
        super().__init__(
            f"protocol version {version} not supported (this codec speaks {supported})",
            offset=0,
            header=header,
        )


class UnknownOpcode(ProtocolError):
    """An opcode with no message for its kind; answer requests with UNSUPPORTED_OPCODE."""

    def __init__(self, header: Header, *, detail: str = "") -> None:
        self.kind = header.kind
        self.seq = header.seq
        self.opcode = header.opcode
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"unknown opcode 0x{header.opcode:02X} for kind {header.kind}, seq {header.seq}{extra}",
            offset=4,
            header=header,
        )


class BadField(ProtocolError):
    """A field holds a value outside its range or enumeration."""

    def __init__(
        self,
        field: str,
        value: object,
        reason: str,
        *,
        offset: int | None = None,
        header: Header | None = None,
        message_name: str = "",
    ) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        owner = f"{message_name}." if message_name else ""
        super().__init__(
            f"bad field {owner}{field} = {value!r}: {reason}", offset=offset, header=header
        )
