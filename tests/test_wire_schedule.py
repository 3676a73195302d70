"""A compiled Schedule survives the device layer's conversion and LOAD exactly, or is refused."""

from __future__ import annotations

import pytest

from acudevice.device.loading import (
    schedule_from_requests as schedule_from_load,
)
from acudevice.device.loading import (
    schedule_load_requests as load_requests,
)
from acudevice.plan.schedule import PhaseKind, Schedule, Segment, Shape
from acudevice.protocol import (
    ActuatorCode,
    BadField,
    LoadBegin,
    LoadSegment,
    PhaseCode,
    ShapeCode,
    decode,
    encode,
)

pytestmark = pytest.mark.unit


def _schedule(**overrides: object) -> Schedule:
    phases = [
        (PhaseKind.RAMP, 0, 15000, 30000),
        (PhaseKind.HOLD, 15000, 15000, 60000),
        (PhaseKind.RELEASE, 15000, 0, 30000),
        (PhaseKind.REST, 0, 0, 10000),
    ]
    segments, start = [], 0
    for repeat in range(2):
        for index, (phase, low, high, duration) in enumerate(phases):
            segments.append(
                Segment(
                    start_ms=start,
                    duration_ms=duration,
                    from_level=low,
                    to_level=high,
                    phase=phase,
                    phase_index=index,
                    repeat=repeat,
                    shape=Shape.STEP if phase is PhaseKind.REST else Shape.LINEAR,
                )
            )
            start += duration
    fields: dict[str, object] = dict(
        program="nausea-relief",
        actuator="pressure",
        cap_level=20000,
        frequency_hz=None,
        segments=tuple(segments),
    )
    fields.update(overrides)
    return Schedule.model_validate(fields)


def test_schedule_round_trips_through_the_wire() -> None:
    schedule = _schedule()
    requests = load_requests(schedule)
    begin = requests[0]
    assert begin == LoadBegin(
        actuator=ActuatorCode.PRESSURE,
        segment_count=8,
        total_ms=schedule.total_ms,
        cap_level=20000,
        frequency_dhz=0,
    )
    assert requests[4] == LoadSegment(
        index=3,
        duration_ms=10000,
        from_level=0,
        to_level=0,
        shape=ShapeCode.STEP,
        phase=PhaseCode.REST,
        phase_index=3,
        repeat=0,
    )
    wire = [decode(encode(r, n)).message for n, r in enumerate(requests)]
    assert isinstance(wire[0], LoadBegin)
    segments = [m for m in wire[1:] if isinstance(m, LoadSegment)]
    assert schedule_from_load(wire[0], segments, program="nausea-relief") == schedule


def test_vibration_frequency_is_carried_in_tenths_of_hertz() -> None:
    schedule = _schedule(actuator="vibration", cap_level=600, frequency_hz=187.5)
    begin = load_requests(schedule)[0]
    assert isinstance(begin, LoadBegin) and begin.frequency_dhz == 1875
    segments = [r for r in load_requests(schedule) if isinstance(r, LoadSegment)]
    assert schedule_from_load(begin, segments, program="nausea-relief") == schedule


def test_unrepresentable_frequency_is_refused_not_rounded() -> None:
    with pytest.raises(BadField) as info:
        load_requests(_schedule(actuator="vibration", frequency_hz=187.55))
    assert info.value.field == "frequency_hz"


def test_pressure_schedule_with_a_frequency_is_refused() -> None:
    with pytest.raises(BadField) as info:
        load_requests(_schedule(frequency_hz=50.0))
    assert info.value.field == "frequency_dhz"


def test_gaps_between_segments_are_refused() -> None:
    schedule = _schedule()
    moved = schedule.segments[2].model_copy(update={"start_ms": schedule.segments[2].start_ms + 1})
    broken = schedule.model_copy(
        update={"segments": (*schedule.segments[:2], moved, *schedule.segments[3:])}
    )
    with pytest.raises(BadField) as info:
        load_requests(broken)
    assert info.value.field == "segments[2].start_ms"


def test_levels_beyond_the_wire_range_are_refused() -> None:
    schedule = _schedule()
    high = schedule.segments[0].model_copy(update={"to_level": 70000})
    with pytest.raises(BadField) as info:
        load_requests(schedule.model_copy(update={"segments": (high, *schedule.segments[1:])}))
    assert info.value.field == "to_level" and info.value.value == 70000


def test_rebuild_checks_count_order_and_total() -> None:
    requests = load_requests(_schedule())
    begin = requests[0]
    assert isinstance(begin, LoadBegin)
    segments = [r for r in requests if isinstance(r, LoadSegment)]
    with pytest.raises(BadField, match="segment_count"):
        schedule_from_load(begin, segments[:-1])
    with pytest.raises(BadField, match="out of order"):
        schedule_from_load(begin, [segments[1], segments[0], *segments[2:]])
    short = begin.model_copy(update={"total_ms": begin.total_ms - 1})
    with pytest.raises(BadField, match="total_ms"):
        schedule_from_load(short, segments)
