"""Numbers a person types, in flags and settings files: finite, inside a documented range.

One helper for every float flag and setting, so each refusal reads the same way and names
the flag or field, the value, the range and its unit:

    --remote-max: got nan, not a number; must be more than 0 s and at most 86400 s

Plain classes, no pydantic: the CLI builds its help texts from these ranges at start-up.
"""

from __future__ import annotations

import math

from acudevice.errors import InputError, Problem


def show(value: float) -> str:
    """A number as a person reads it: 12, 0.5, 42949672.96, 1e+20, nan, inf."""
    if isinstance(value, int) or (
        math.isfinite(value) and value == int(value) and abs(value) < 1e15
    ):
        return str(int(value))
    return repr(float(value))


class Span:
    """A closed or open interval with a unit: `Span(0, 10, "Hz", low_open=True)` is 0 < x <= 10."""

    __slots__ = ("high", "high_open", "low", "low_open", "unit")

    def __init__(
        self,
        low: float,
        high: float,
        unit: str = "",
        *,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        self.low = low
        self.high = high
        self.unit = unit
        self.low_open = low_open
        self.high_open = high_open

    def _with_unit(self, value: float) -> str:
        if not self.unit:
            return show(value)
        return f"{show(value)}{'' if self.unit == '%' else ' '}{self.unit}"

    def __str__(self) -> str:
        low = "more than" if self.low_open else "at least"
        high = "less than" if self.high_open else "at most"
        return f"{low} {self._with_unit(self.low)} and {high} {self._with_unit(self.high)}"

    def __repr__(self) -> str:
        return f"Span({self.low!r}, {self.high!r}, {self.unit!r})"

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above_low = value > self.low if self.low_open else value >= self.low
        below_high = value < self.high if self.high_open else value <= self.high
        return above_low and below_high

    def complaint(self, value: float) -> str | None:
        """What is wrong with `value` in one phrase, or None when it is in range."""
        if value in self:
            return None
        if math.isnan(value):
            got = "got nan, not a number"
        elif math.isinf(value):
            got = f"got {show(value)}, not a finite number"
        else:
            got = f"got {self._with_unit(value)}"
        return f"{got}; must be {self}"

    def check(self, name: str, value: float) -> float:
        """`value` if it is in range; else an InputError naming `name` (a flag or a field)."""
        problem = self.complaint(value)
        if problem is not None:
            raise InputError([Problem(name, "", problem)])
        return value

    def validate(self, value: float) -> float:
        """For a pydantic `AfterValidator`: the file and field are named by the caller."""
        problem = self.complaint(value)
        if problem is not None:
            raise ValueError(problem)
        return value


def checked(name: str, value: float | None, span: Span) -> float | None:
    """An optional flag: None passes (the default applies), a number is checked."""
    return None if value is None else span.check(name, value)
