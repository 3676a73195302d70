"""A compiled `Schedule` as LOAD requests, and LOAD requests back into a `Schedule`.

Both directions are exact: nothing is rounded or clamped; a schedule the wire cannot carry
is refused with `BadField` naming the segment field.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from acudevice.plan.schedule import PhaseKind, Schedule, Segment, Shape
from acudevice.protocol.codes import ActuatorCode, PhaseCode, ShapeCode
from acudevice.protocol.errors import BadField
from acudevice.protocol.messages import LoadBegin, LoadSegment

_SHAPES = {Shape.LINEAR: ShapeCode.LINEAR, Shape.STEP: ShapeCode.STEP}
_PHASES = {
    PhaseKind.RAMP: PhaseCode.RAMP,
    PhaseKind.HOLD: PhaseCode.HOLD,
    PhaseKind.RELEASE: PhaseCode.RELEASE,
    PhaseKind.REST: PhaseCode.REST,
}
_ACTUATORS = {"pressure": ActuatorCode.PRESSURE, "vibration": ActuatorCode.VIBRATION}


def frequency_dhz(schedule: Schedule) -> int:
    """Frequency in 0.1 Hz units; refused unless exactly representable."""
    if schedule.frequency_hz is None:
        return 0
    dhz = round(schedule.frequency_hz * 10)
    if abs(dhz - schedule.frequency_hz * 10) > 1e-6 or not 0 <= dhz <= 0xFFFF:
        raise BadField("frequency_hz", schedule.frequency_hz, "needs whole 0.1 Hz in 0..6553.5")
    return dhz


def load_requests(schedule: Schedule) -> list[LoadBegin | LoadSegment]:
    """LOAD_BEGIN then one LOAD_SEGMENT per segment, ready to send in order."""
    expected = 0
    for i, seg in enumerate(schedule.segments):
        if seg.start_ms != expected:
            raise BadField(
                f"segments[{i}].start_ms", seg.start_ms, f"must be {expected} (contiguous from 0)"
            )
        expected = seg.end_ms
    try:
        begin = LoadBegin(
            actuator=_ACTUATORS[schedule.actuator],
            segment_count=len(schedule.segments),
            total_ms=schedule.total_ms,
            cap_level=schedule.cap_level,
            frequency_dhz=frequency_dhz(schedule),
        )
        requests: list[LoadBegin | LoadSegment] = [begin]
        for i, seg in enumerate(schedule.segments):
            requests.append(
                LoadSegment(
                    index=i,
                    duration_ms=seg.duration_ms,
                    from_level=seg.from_level,
                    to_level=seg.to_level,
                    shape=_SHAPES[seg.shape],
                    phase=_PHASES[seg.phase],
                    phase_index=seg.phase_index,
                    repeat=seg.repeat,
                )
            )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "schedule"
        raise BadField(field, err.get("input"), err["msg"]) from None
    return requests


def schedule_from_load(
    begin: LoadBegin, segments: Sequence[LoadSegment], *, program: str = "device"
) -> Schedule:
    """Rebuild the schedule a device received; checks count, order and total."""
    if len(segments) != begin.segment_count:
        raise BadField("segment_count", begin.segment_count, f"but {len(segments)} arrived")
    start = 0
    built: list[Segment] = []
    shapes = {v: k for k, v in _SHAPES.items()}
    phases = {v: k for k, v in _PHASES.items()}
    for i, seg in enumerate(segments):
        if seg.index != i:
            raise BadField("index", seg.index, f"segment {i} arrived out of order")
        built.append(
            Segment(
                start_ms=start,
                duration_ms=seg.duration_ms,
                from_level=seg.from_level,
                to_level=seg.to_level,
                shape=shapes[seg.shape],
                phase=phases[seg.phase],
                phase_index=seg.phase_index,
                repeat=seg.repeat,
            )
        )
        start += seg.duration_ms
    if start != begin.total_ms:
        raise BadField("total_ms", begin.total_ms, f"but the segments add up to {start}")
    actuator = "pressure" if begin.actuator is ActuatorCode.PRESSURE else "vibration"
    return Schedule(
        program=program,
        actuator=actuator,
        cap_level=begin.cap_level,
        frequency_hz=begin.frequency_dhz / 10 if begin.frequency_dhz else None,
        segments=tuple(built),
    )
