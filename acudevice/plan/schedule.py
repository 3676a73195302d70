"""The compiled, device-ready form of a program.

Levels are integers in thousandths of the surface unit: Pa for pressure (kPa x 1000),
permille for vibration intensity (fraction x 1000). Integers keep compilation exact and the
wire encoding lossless.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Actuator = Literal["pressure", "vibration"]


class Shape(StrEnum):
    LINEAR = "linear"
    STEP = "step"


class PhaseKind(StrEnum):
    RAMP = "ramp"
    HOLD = "hold"
    RELEASE = "release"
    REST = "rest"


class Segment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start_ms: int = Field(ge=0)
    duration_ms: int = Field(gt=0)
    from_level: int = Field(ge=0)
    to_level: int = Field(ge=0)
    shape: Shape = Shape.LINEAR
    phase: PhaseKind
    phase_index: int = Field(ge=0)
    repeat: int = Field(ge=0)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_ms

    @property
    def peak_level(self) -> int:
        return max(self.from_level, self.to_level)

    def level_at(self, t_ms: float) -> float:
        """Planned level at absolute time `t_ms` (clamped to this segment)."""
        if self.shape is Shape.STEP:
            return float(self.to_level)
        frac = min(max((t_ms - self.start_ms) / self.duration_ms, 0.0), 1.0)
        return self.from_level + (self.to_level - self.from_level) * frac

    @property
    def slope_per_s(self) -> float:
        """Absolute rate of change in level units per second."""
        return abs(self.to_level - self.from_level) * 1000.0 / self.duration_ms


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    program: str
    actuator: Actuator
    cap_level: int = Field(ge=0, description="effective cap the schedule was compiled against")
    frequency_hz: float | None = None
    segments: tuple[Segment, ...]

    @property
    def total_ms(self) -> int:
        return self.segments[-1].end_ms if self.segments else 0

    @property
    def total_s(self) -> float:
        return self.total_ms / 1000.0

    @property
    def peak_level(self) -> int:
        return max((s.peak_level for s in self.segments), default=0)

    def phase_peaks(self) -> dict[tuple[int, int], int]:
        """Peak level per (repeat, phase index)."""
        peaks: dict[tuple[int, int], int] = {}
        for seg in self.segments:
            key = (seg.repeat, seg.phase_index)
            peaks[key] = max(peaks.get(key, 0), seg.peak_level)
        return peaks

    def level_at(self, t_ms: float) -> float:
        for seg in self.segments:
            if seg.start_ms <= t_ms < seg.end_ms:
                return seg.level_at(t_ms)
        return float(self.segments[-1].to_level) if self.segments else 0.0

    def segment_at(self, t_ms: float) -> Segment | None:
        for seg in self.segments:
            if seg.start_ms <= t_ms < seg.end_ms:
                return seg
        return None

    def from_repeat(self, repeat: int) -> Schedule:
        """The schedule from the start of `repeat` (its ramp), re-based to time zero.

        Used after a lost link: a session never resumes at pressure, it restarts the repeat.
        """
        kept = [s for s in self.segments if s.repeat >= repeat]
        if not kept:
            raise ValueError(f"no repeat {repeat} in this schedule")
        offset = kept[0].start_ms
        return self.model_copy(
            update={
                "segments": tuple(
                    s.model_copy(update={"start_ms": s.start_ms - offset}) for s in kept
                )
            }
        )
