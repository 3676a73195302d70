"""A participant's session timetable in a study: windows of local time, day after day.

A study protocol (plan/protocol.py) says when sessions are due: time windows in a time zone
(`08:00`-`10:00`, ...), one session per window, for a number of days. Enrolment fixes the
first day, and the result is a participant's `Timetable`. (It is not a `Schedule`: that name
belongs to a program compiled for a device, plan/schedule.py.)

Local times become instants with the IANA time zone (zoneinfo, PEP 495): a window that starts
in the hour a spring clock change skips starts an hour later by the wall clock; one in the
hour an autumn change repeats takes the first of the two. A window whose end falls before its
start that way keeps its nominal length. Everything here is pure: no clock is read.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

MAX_WINDOWS = 12
MAX_DAYS = 366
MIN_WINDOW_MIN = 5
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,3}")

Whole = Annotated[int, Strict()]


def _time_text(value: Any) -> Any:
    """A TOML local time (`08:00:00`) reads as "08:00"; seconds are not a schedule's unit."""
    if isinstance(value, dt.time) and value.tzinfo is None:
        if value.second or value.microsecond:
            raise ValueError('give whole minutes, as "HH:MM"')
        return f"{value.hour:02d}:{value.minute:02d}"
    return value


def _check_hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError(f'{value[:20]!r} is not a time of day "HH:MM" (00:00 to 23:59)')
    return value


LocalTime = Annotated[str, BeforeValidator(_time_text), Strict(), AfterValidator(_check_hhmm)]


@lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """An IANA time zone; ValueError (one line) for anything else."""
    if len(name) > 64 or not _ZONE.fullmatch(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone name such as Europe/London")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Europe/London)"
        ) from None


def _check_zone(name: str) -> str:
    zone(name)
    return name


TimeZoneName = Annotated[str, Strict(), AfterValidator(_check_zone)]


def minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


class DailyWindow(BaseModel):
    """One session's window, the same every day, in the timetable's local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _ordered(self) -> DailyWindow:
        length = minutes(self.end) - minutes(self.start)
        if length < MIN_WINDOW_MIN:
            raise ValueError(
                f"a window must end at least {MIN_WINDOW_MIN} min after it starts, on the same "
                f"day ({self.start}-{self.end})"
            )
        return self

    @property
    def length(self) -> dt.timedelta:
        return dt.timedelta(minutes=minutes(self.end) - minutes(self.start))


def check_windows(windows: tuple[DailyWindow, ...]) -> list[tuple[int, str]]:
    """(index, problem) for windows out of order or overlapping: they are numbered as written."""
    found = []
    for i in range(1, len(windows)):
        if minutes(windows[i].start) < minutes(windows[i - 1].end):
            found.append(
                (i, f"starts at {windows[i].start}, before window {i} ends "
                    f"({windows[i - 1].end}); list windows in order, without overlap")
            )  # fmt: skip
    return found


Windows = Annotated[tuple[DailyWindow, ...], Field(min_length=1, max_length=MAX_WINDOWS)]


@dataclass(frozen=True)
class Slot:
    """One window on one day: the unit adherence and reminders count."""

    day: int
    """1 for the first day of the timetable."""
    date: dt.date
    """The local date."""
    window: int
    """1 for the day's first window."""
    opens: dt.datetime
    closes: dt.datetime
    """Instants, in UTC."""

    def holds(self, when: dt.datetime) -> bool:
        return self.opens <= when < self.closes


class Timetable(BaseModel):
    """A participant's sessions: `days` days from `first_day`, one session in each window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: TimeZoneName
    first_day: dt.date
    days: Whole = Field(ge=1, le=MAX_DAYS)
    windows: Windows

    @model_validator(mode="after")
    def _in_order(self) -> Timetable:
        for i, problem in check_windows(self.windows):
            raise ValueError(f"windows[{i}]: {problem}")
        return self

    @property
    def last_day(self) -> dt.date:
        return self.first_day + dt.timedelta(days=self.days - 1)

    def slots(self) -> list[Slot]:
        """Every window of every day, in time order."""
        tz = zone(self.timezone)
        found = []
        for d in range(self.days):
            date = self.first_day + dt.timedelta(days=d)
            for n, window in enumerate(self.windows, start=1):
                opens = _instant(date, window.start, tz)
                closes = _instant(date, window.end, tz)
                if closes <= opens:  # the end fell into a skipped hour: keep the length
                    closes = opens + window.length
                found.append(Slot(d + 1, date, n, opens, closes))
        return found

    def local_date(self, when: dt.datetime) -> dt.date:
        return when.astimezone(zone(self.timezone)).date()


def _instant(date: dt.date, hhmm: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    hours, mins = divmod(minutes(hhmm), 60)
    local = dt.datetime.combine(date, dt.time(hours, mins), tzinfo=tz)
    return local.astimezone(dt.UTC)


@dataclass(frozen=True)
class SessionMark:
    """What adherence and reminders need of a session: when it started and how it ended
    (the journal's outcome: running, completed, stopped, faulted, estopped, link-lost,
    interrupted)."""

    started_at: dt.datetime
    outcome: str
