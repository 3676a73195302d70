"""Wire field types: each `Annotated` alias carries its range and its encoding.

The `Wire` marker in a field's metadata is how the codec lays the field out; the `Field`
bounds are what pydantic refuses at construction and what `decode` reports as `BadField`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntFlag, StrEnum
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from acudevice.protocol.codes import MAX_STRING_BYTES


class Wire(StrEnum):
    """How one field is laid out; the value is its `struct` format character."""

    U8 = "B"
    U16 = "H"
    U32 = "I"
    I32 = "i"
    STR = "s"  # u8 byte length, then that many bytes of UTF-8


def _utf8_bounded(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > MAX_STRING_BYTES:
        raise ValueError(f"is {size} bytes of UTF-8; at most {MAX_STRING_BYTES} allowed")
    return value


def flag_bits(flags: type[IntFlag]) -> BeforeValidator:
    """Put on an IntFlag field, before the enum check: an int outside u8 is refused (Python
    reads IntFlag(-1) as "every bit"; on the wire it is simply out of range), and an int
    that names valid bits becomes its member, built once here, so the enum check passes it
    without calling the class (half a microsecond a sample at speed=max). Undefined bits
    are left to the enum check, which refuses them."""
    members: dict[int, IntFlag] = {}
    for bits in range(0x100):
        try:
            members[bits] = flags(bits)
        except ValueError:
            continue

    def check(value: object) -> object:
        if type(value) is int:  # a bool stays a bool, and is refused as one
            member = members.get(value)
            if member is not None:
                return member
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{value} does not fit in u8 flags")
        return value

    checker: Callable[[object], object] = check
    return BeforeValidator(checker)


U8 = Annotated[int, Strict(), Field(ge=0, le=0xFF), Wire.U8]
U16 = Annotated[int, Strict(), Field(ge=0, le=0xFFFF), Wire.U16]
U32 = Annotated[int, Strict(), Field(ge=0, le=0xFFFF_FFFF), Wire.U32]
I32 = Annotated[int, Strict(), Field(ge=-(2**31), le=2**31 - 1), Wire.I32]
Text = Annotated[str, Strict(), AfterValidator(_utf8_bounded), Wire.STR]

Level = Annotated[int, Strict(), Field(ge=0, le=0xFFFF, description="Pa or ‰"), Wire.U16]
MeasuredLevel = Annotated[
    int, Strict(), Field(ge=-(2**31), le=2**31 - 1, description="Pa or ‰"), Wire.I32
]
Millis = Annotated[int, Strict(), Field(ge=0, le=0xFFFF_FFFF, description="ms"), Wire.U32]
PositiveMillis = Annotated[int, Strict(), Field(ge=1, le=0xFFFF_FFFF, description="ms"), Wire.U32]
Percent = Annotated[int, Strict(), Field(ge=0, le=100, description="%"), Wire.U8]
Version = Annotated[int, Strict(), Field(ge=1, le=0x7F), Wire.U8]
SegmentIndex = Annotated[int, Strict(), Field(ge=0, le=0xFFFF), Wire.U16]
CurrentSegment = Annotated[
    int, Strict(), Field(ge=0, le=0xFFFF, description="0xFFFF = none"), Wire.U16
]
