"""When to remind a participant of a session, and which windows passed without one.

The gateway calls `check_reminders` with the time of its previous check (`since`) and now,
then sleeps until `next_at` (or until a session starts). Pure: no clock is read, so a test
drives it on any clock, across midnight and clock changes.

For each window, the first reminder comes `before_min` before it opens (0: as it opens),
then one every `every_min` (0: none) from the opening while it is open. Reminders stop once a
session has started inside the window, whatever its outcome: after a fault the study team,
not a reminder, decides what happens next. A window that closes with no session started
inside it is reported missed once (a session started late is counted as late by adherence,
plan/adherence.py). A check that comes after several reminder times of one window (the
gateway was away) gives only the latest; a window already closed gives none.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict

from acudevice.plan.adherence import DONE_OUTCOMES, FAILED_OUTCOMES
from acudevice.plan.timetable import SessionMark, Slot, Timetable

MAX_LEAD_MIN = 720


class ReminderSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    before_min: Annotated[int, Strict()] = Field(default=15, ge=0, le=MAX_LEAD_MIN)
    """The first reminder, this many minutes before the window opens (0: as it opens)."""
    every_min: Annotated[int, Strict()] = Field(default=30, ge=0, le=MAX_LEAD_MIN)
    """Then again this often while the window is open and no session has started (0: once)."""


@dataclass(frozen=True)
class Reminder:
    slot: Slot
    at: dt.datetime
    n: int
    """1 for the window's first reminder."""


@dataclass(frozen=True)
class ReminderCheck:
    due: tuple[Reminder, ...]
    """Reminders to raise now: at most one per window, the latest whose time has come."""
    missed: tuple[Slot, ...]
    """Windows that closed since the previous check with no session started inside."""
    next_at: dt.datetime | None
    """When something next falls due (a reminder or a window closing); None: nothing left."""


def reminder_times(slot: Slot, settings: ReminderSettings) -> list[dt.datetime]:
    times = [slot.opens - dt.timedelta(minutes=settings.before_min)]
    if settings.every_min:
        step = dt.timedelta(minutes=settings.every_min)
        at = slot.opens + step
        while at < slot.closes:
            times.append(at)
            at += step
    return [t for t in times if t < slot.closes]


def check_reminders(
    timetable: Timetable,
    settings: ReminderSettings | None,
    sessions: Iterable[SessionMark],
    since: dt.datetime,
    now: dt.datetime,
) -> ReminderCheck:
    """What fell due in (`since`, `now`]; `settings` None: no reminders, only missed windows."""
    started = sorted(s.started_at for s in sessions if s.outcome in DONE_OUTCOMES | FAILED_OUTCOMES)
    due: list[Reminder] = []
    missed: list[Slot] = []
    upcoming: list[dt.datetime] = []
    for slot in timetable.slots():
        if slot.closes <= since or _attended(slot, started):
            continue
        if slot.closes <= now:
            missed.append(slot)
            continue
        upcoming.append(slot.closes)
        if settings is None:
            continue
        times = reminder_times(slot, settings)
        fallen = [i for i, t in enumerate(times) if since < t <= now]
        if fallen:
            due.append(Reminder(slot, times[fallen[-1]], fallen[-1] + 1))
        upcoming += [t for t in times if t > now]
    return ReminderCheck(tuple(due), tuple(missed), min(upcoming, default=None))


def _attended(slot: Slot, started: list[dt.datetime]) -> bool:
    """Whether a session (of the sorted start times) started inside `slot`."""
    i = bisect.bisect_left(started, slot.opens)
    return i < len(started) and started[i] < slot.closes
