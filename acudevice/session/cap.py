"""The one cap of a running session: what screening allowed, lowered by the person, never raised.

Everything that needs the session's limit reads `Cap.current`: the monitors, the events the
live view and the gateway show, the journal, and the reconnect path (which reloads a band
under it). A change says why (`CapCause`), so no consumer has to guess from the numbers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

TOO_STRONG_FACTOR = 0.7
""""Too strong" drops to this fraction of the level measured when it was pressed."""


class CapCause(enum.StrEnum):
    SCREENED = "screened"
    """The verdict's cap: the envelope with remembered comfort maxima folded in."""
    TOO_STRONG = "too-strong"
    """The person said "too strong": a report of discomfort, remembered for the point."""
    INTENSITY = "intensity"
    """A lower intensity asked for (a remote dial): a preference for this session only."""


@dataclass(frozen=True)
class CapChange:
    level: int
    previous: int
    cause: CapCause


class Cap:
    """Levels in Pa or permille. `full` is 100 % intensity: the screened cap, or the plan's
    peak when the plan stays below it (a 20 kPa cap over a 12 kPa plan would otherwise make
    "50 %" change almost nothing)."""

    def __init__(self, screened: int, planned_peak: int) -> None:
        if screened <= 0:
            raise ValueError(f"a cap must be above zero, not {screened}")
        self.screened = screened
        self.full = min(screened, planned_peak) if planned_peak > 0 else screened
        self.comfort: int | None = None
        self.intensity: int | None = None

    @property
    def current(self) -> int:
        return min(self.screened, self.comfort or self.screened, self.intensity or self.screened)

    @property
    def percent(self) -> int:
        """The current cap as a percentage of full intensity (a cap above the plan's peak is 100)."""
        return percent_of(self.current, self.full)

    def lower(self, level: int, cause: CapCause) -> CapChange | None:
        """Lower to `level`; None (nothing changes) unless it is below the current cap."""
        previous = self.current
        if cause is CapCause.SCREENED or not 0 < level < previous:
            return None
        if cause is CapCause.TOO_STRONG:
            self.comfort = level
        else:
            self.intensity = level
        return CapChange(level, previous, cause)

    def too_strong_level(self, felt: int) -> int:
        """70 % of what was felt, never above it nor above the current cap; at least 1."""
        return max(min(int(felt * TOO_STRONG_FACTOR), self.current - 1), 1)

    def intensity_level(self, percent: int) -> int:
        return max(round(self.full * percent / 100), 1)


def percent_of(level: int, full_level: int) -> int:
    return min(100, round(100 * level / full_level)) if full_level > 0 else 0
