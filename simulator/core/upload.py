"""A schedule upload in progress: LOAD_BEGIN, then LOAD_SEGMENTs checked one by one.

Every level is checked against the hardware maximum first, then the active cap, as the
protocol requires; then continuity and the ramp-rate limit (a segment steeper than the
device can follow is refused, never slowed). The caller aborts the upload on any refusal.
"""

from __future__ import annotations

from acudevice.protocol import ActuatorCode, LoadBegin, LoadSegment, Result, ShapeCode
from simulator.core.player import Plan, PlanSegment

MAX_SEGMENTS = 512
"""Schedule memory of the simulated firmware."""


def check_level(level: int, *, cap: int, hardware_max: int) -> Result:
    if level > hardware_max:
        return Result.ABOVE_HARDWARE_MAX
    if level > cap:
        return Result.ABOVE_CAP
    return Result.OK


def check_begin(begin: LoadBegin, *, actuator: ActuatorCode, cap: int, hardware_max: int) -> Result:
    if begin.actuator is not actuator or begin.segment_count > MAX_SEGMENTS:
        return Result.INVALID_PARAMETER
    return check_level(begin.cap_level, cap=cap, hardware_max=hardware_max)


def steeper_than(change: float, duration_ms: int, ramp_limit: int) -> bool:
    """`change` over `duration_ms` is steeper than `ramp_limit` per second (INFO's
    `ramp_limit_per_s`): refused, in a segment or a SET_TARGET rise, never slowed."""
    return change * 1000 > ramp_limit * duration_ms


def too_steep(seg: LoadSegment, ramp_limit: int) -> bool:
    """Steeper than `ramp_limit` per second; a STEP that changes the level always is."""
    change = abs(seg.to_level - seg.from_level)
    if seg.shape is ShapeCode.STEP:
        return change > 0
    return steeper_than(change, seg.duration_ms, ramp_limit)


class Upload:
    def __init__(self, begin: LoadBegin) -> None:
        self.begin = begin
        self.segments: list[PlanSegment] = []
        self._t_ms = 0

    @property
    def complete(self) -> bool:
        return len(self.segments) == self.begin.segment_count

    def add(self, seg: LoadSegment, *, cap: int, hardware_max: int, ramp_limit: int) -> Result:
        """Store the next segment, or say why not (the caller then aborts the upload)."""
        if seg.index != len(self.segments):
            return Result.INVALID_PARAMETER
        worst = max(seg.from_level, seg.to_level)
        result = check_level(worst, cap=cap, hardware_max=hardware_max)
        if result is not Result.OK:
            return result
        previous = self.segments[-1].to_level if self.segments else 0
        if seg.from_level != previous or too_steep(seg, ramp_limit):
            return Result.INVALID_PARAMETER
        end_ms = self._t_ms + seg.duration_ms
        if end_ms > self.begin.total_ms:
            return Result.INVALID_PARAMETER
        is_last = seg.index == self.begin.segment_count - 1
        if is_last and end_ms != self.begin.total_ms:
            return Result.INVALID_PARAMETER
        self.segments.append(
            PlanSegment(
                start_ms=self._t_ms,
                end_ms=end_ms,
                from_level=seg.from_level,
                to_level=seg.to_level,
                step=seg.shape is ShapeCode.STEP,
            )
        )
        self._t_ms = end_ms
        return Result.OK

    def plan(self) -> Plan:
        if not self.complete:
            raise RuntimeError("upload is not complete")
        return Plan(tuple(self.segments))
