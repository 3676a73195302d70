"""A schedule as the wire knows it, as LOAD requests, and LOAD requests back into it.

The wire layer has its own segment type so that it stays a leaf: the device layer converts
a compiled plan into a `WireSchedule`. Both directions are exact: nothing is rounded or
clamped; a schedule the wire cannot carry is refused with `BadField` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from acudevice.protocol.codes import ActuatorCode, PhaseCode, ShapeCode
from acudevice.protocol.errors import BadField
from acudevice.protocol.messages import LoadBegin, LoadSegment


@dataclass(frozen=True)
class WireSegment:
    duration_ms: int
    from_level: int
    to_level: int
    shape: ShapeCode
    phase: PhaseCode
    phase_index: int
    repeat: int


@dataclass(frozen=True)
class WireSchedule:
    actuator: ActuatorCode
    cap_level: int
    frequency_dhz: int
    segments: tuple[WireSegment, ...]

    @property
    def total_ms(self) -> int:
        return sum(s.duration_ms for s in self.segments)


def load_requests(schedule: WireSchedule) -> list[LoadBegin | LoadSegment]:
    """LOAD_BEGIN then one LOAD_SEGMENT per segment, ready to send in order."""
    try:
        begin = LoadBegin(
            actuator=schedule.actuator,
            segment_count=len(schedule.segments),
            total_ms=schedule.total_ms,
            cap_level=schedule.cap_level,
            frequency_dhz=schedule.frequency_dhz,
        )
        requests: list[LoadBegin | LoadSegment] = [begin]
        for i, seg in enumerate(schedule.segments):
            requests.append(
                LoadSegment(
                    index=i,
                    duration_ms=seg.duration_ms,
                    from_level=seg.from_level,
                    to_level=seg.to_level,
                    shape=seg.shape,
                    phase=seg.phase,
                    phase_index=seg.phase_index,
                    repeat=seg.repeat,
                )
            )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "schedule"
        raise BadField(field, err.get("input"), err["msg"]) from None
    return requests


def schedule_from_load(begin: LoadBegin, segments: Sequence[LoadSegment]) -> WireSchedule:
    """Rebuild the schedule a device received; checks count, order and total."""
    if len(segments) != begin.segment_count:
        raise BadField("segment_count", begin.segment_count, f"but {len(segments)} arrived")
    for i, seg in enumerate(segments):
        if seg.index != i:
            raise BadField("index", seg.index, f"segment {i} arrived out of order")
    built = tuple(
        WireSegment(
            duration_ms=seg.duration_ms,
            from_level=seg.from_level,
            to_level=seg.to_level,
            shape=seg.shape,
            phase=seg.phase,
            phase_index=seg.phase_index,
            repeat=seg.repeat,
        )
        for seg in segments
    )
    wire = WireSchedule(
        actuator=begin.actuator,
        cap_level=begin.cap_level,
        frequency_dhz=begin.frequency_dhz,
        segments=built,
    )
    if wire.total_ms != begin.total_ms:
        raise BadField("total_ms", begin.total_ms, f"but the segments add up to {wire.total_ms}")
    return wire
