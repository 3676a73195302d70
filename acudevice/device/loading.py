"""A compiled plan `Schedule` as the wire's `WireSchedule`, and back.

Exact both ways: a schedule the wire cannot carry (a gap, a frequency that is not a whole
0.1 Hz) is refused with `BadField` naming the field, never rounded.
"""

from __future__ import annotations

from acudevice.plan.devices import format_level
from acudevice.plan.schedule import PhaseKind, Schedule, Segment, Shape
from acudevice.protocol.codes import ActuatorCode, PhaseCode, ShapeCode
from acudevice.protocol.errors import BadField
from acudevice.protocol.loading import (
    WireSchedule,
    WireSegment,
    load_requests,
    schedule_from_load,
)
from acudevice.protocol.messages import LoadBegin, LoadSegment
from acudevice.safety.findings import Finding
from acudevice.safety.rules import RuleId

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


def to_wire(schedule: Schedule) -> WireSchedule:
    expected = 0
    for i, seg in enumerate(schedule.segments):
        if seg.start_ms != expected:
            raise BadField(
                f"segments[{i}].start_ms", seg.start_ms, f"must be {expected} (contiguous from 0)"
            )
        expected = seg.end_ms
    return WireSchedule(
        actuator=_ACTUATORS[schedule.actuator],
        cap_level=schedule.cap_level,
        frequency_dhz=frequency_dhz(schedule),
        segments=tuple(
            WireSegment(
                duration_ms=seg.duration_ms,
                from_level=seg.from_level,
                to_level=seg.to_level,
                shape=_SHAPES[seg.shape],
                phase=_PHASES[seg.phase],
                phase_index=seg.phase_index,
                repeat=seg.repeat,
            )
            for seg in schedule.segments
        ),
    )


def from_wire(wire: WireSchedule, *, program: str = "device") -> Schedule:
    shapes = {v: k for k, v in _SHAPES.items()}
    phases = {v: k for k, v in _PHASES.items()}
    start = 0
    built: list[Segment] = []
    for seg in wire.segments:
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
    return Schedule(
        program=program,
        actuator="pressure" if wire.actuator is ActuatorCode.PRESSURE else "vibration",
        cap_level=wire.cap_level,
        frequency_hz=wire.frequency_dhz / 10 if wire.frequency_dhz else None,
        segments=tuple(built),
    )


def schedule_load_requests(schedule: Schedule) -> list[LoadBegin | LoadSegment]:
    """LOAD_BEGIN then one LOAD_SEGMENT per segment for a compiled plan."""
    return load_requests(to_wire(schedule))


def schedule_from_requests(
    begin: LoadBegin, segments: list[LoadSegment], *, program: str = "device"
) -> Schedule:
    return from_wire(schedule_from_load(begin, segments), program=program)


def too_steep(segment: Segment, ramp_limit_per_s: int) -> bool:
    """The firmware's own test (docs/protocol.md "Segments"), in whole numbers."""
    change = abs(segment.to_level - segment.from_level)
    if segment.shape is Shape.STEP:
        return change > 0
    return change * 1000 > ramp_limit_per_s * segment.duration_ms


def schedule_refusals(
    schedule: Schedule, *, model: str, hardware_max_level: int, ramp_limit_per_s: int
) -> list[Finding]:
    """What the firmware would refuse in `schedule`, checked on the host before any byte.

    A schedule built by hand (not by the compiler) must not reach the device above its cap
    or the hardware maximum, nor steeper than the band follows.
    """
    actuator = schedule.actuator
    refusals = []
    if schedule.peak_level > schedule.cap_level:
        refusals.append(
            Finding(
                rule=RuleId.EFFECTIVE_CAP,
                message=(
                    f"schedule peaks at {format_level(schedule.peak_level, actuator)}, above "
                    f"its cap {format_level(schedule.cap_level, actuator)}"
                ),
            )
        )
    if schedule.cap_level > hardware_max_level:
        refusals.append(
            Finding(
                rule=RuleId.HARDWARE_MAX,
                message=(
                    f"cap {format_level(schedule.cap_level, actuator)} is above "
                    f"{model}'s hardware maximum"
                ),
            )
        )
    steep = [i for i, s in enumerate(schedule.segments) if too_steep(s, ramp_limit_per_s)]
    if steep:
        refusals.append(
            Finding(
                rule=RuleId.DEVICE_RAMP_RATE,
                message=(
                    f"segment {steep[0]} is steeper than {model} follows "
                    f"({format_level(ramp_limit_per_s, actuator)}/s, from its INFO)"
                ),
            )
        )
    return refusals
