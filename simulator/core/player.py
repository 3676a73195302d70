"""Playback in device time: a loaded schedule (which segment, what level) or a SET_TARGET ramp.

The firmware stores a loaded schedule as plain tuples (no validation on the hot path) and
advances an integer clock of device milliseconds, so playback is exact and the same at any
simulation speed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlanSegment:
    start_ms: int
    end_ms: int
    from_level: int
    to_level: int
    step: bool

    def level_at(self, t_ms: int) -> float:
        if self.step:
            return float(self.to_level)
        frac = (t_ms - self.start_ms) / (self.end_ms - self.start_ms)
        return self.from_level + (self.to_level - self.from_level) * frac


@dataclass(frozen=True)
class Plan:
    segments: tuple[PlanSegment, ...]

    @property
    def total_ms(self) -> int:
        return self.segments[-1].end_ms

    @property
    def peak_level(self) -> int:
        return max(max(s.from_level, s.to_level) for s in self.segments)


class Player:
    """Plays one `Plan`; `advance` reports the segments that started."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.elapsed_ms = 0
        self.index = 0
        self._count = len(plan.segments)
        self.done = not plan.segments
        """Every segment has ended (kept by `advance`, read at every control tick)."""

    def target(self) -> float:
        if self.done:
            return float(self.plan.segments[-1].to_level)
        return self.plan.segments[self.index].level_at(self.elapsed_ms)

    def ms_to_boundary(self) -> int | None:
        """Device ms until the current segment ends (None when done): an event."""
        if self.index >= self._count:
            return None
        return self.plan.segments[self.index].end_ms - self.elapsed_ms

    def advance(self, dt_ms: int) -> tuple[int, ...]:
        """Move the clock on; return indices of segments that began (not index 0)."""
        self.elapsed_ms += dt_ms
        segments = self.plan.segments
        if self.index >= self._count or self.elapsed_ms < segments[self.index].end_ms:
            return ()
        started: list[int] = []
        while self.index < self._count and self.elapsed_ms >= segments[self.index].end_ms:
            self.index += 1
            if self.index < self._count:
                started.append(self.index)
        self.done = self.index >= self._count
        return tuple(started)


class Stream:
    """A SET_TARGET ramp: from `start` to `goal` over `ramp_ms` of device time."""

    def __init__(self, start: float, goal: int, ramp_ms: int, now_ms: int) -> None:
        self.start, self.goal, self.ramp_ms, self.t0 = start, goal, ramp_ms, now_ms

    def level(self, now_ms: int) -> float:
        if self.ramp_ms <= 0 or now_ms >= self.t0 + self.ramp_ms:
            return float(self.goal)
        return self.start + (self.goal - self.start) * (now_ms - self.t0) / self.ramp_ms
