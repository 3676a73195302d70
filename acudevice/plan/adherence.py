"""Adherence: each window of a participant's timetable counted as done, late, failed, missed
or due, from their sessions' start times and outcomes (docs/trials.md, "Adherence").

- **done**: a session started inside the window (opens <= start < closes) that completed,
  was stopped, or is still running. A second one in the same window is `extra`.
- **late**: none done inside, but a session started after the window closed, on the same
  local date, completed or stopped or running; it makes up for the latest earlier window of
  that date not yet done or made up. Done sessions outside every window that make up for
  nothing (early, or more than the day's windows) are `extra`.
- **failed**: closed, neither done nor late, and a session started inside it ended by the
  band or the link (faulted, estopped, link-lost, interrupted): the participant came, the
  device did not finish. Safety is never blinded, and a fault is not a participant's lapse.
- **missed**: closed, and none of the above.
- **due**: not yet closed (open now, or to come), and not done.

Each window is exactly one of done, late, failed, missed, due. Pure: `now` is given.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from acudevice.plan.timetable import SessionMark, Slot, Timetable

Status = Literal["done", "late", "failed", "missed", "due"]
STATUSES: tuple[Status, ...] = ("done", "late", "failed", "missed", "due")
DONE_OUTCOMES = frozenset({"completed", "stopped", "running"})
FAILED_OUTCOMES = frozenset({"faulted", "estopped", "link-lost", "interrupted"})


@dataclass
class DayAdherence:
    day: int
    date: str
    windows: int
    done: int = 0
    late: int = 0
    failed: int = 0
    missed: int = 0
    due: int = 0
    extra: int = 0

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def slot_statuses(
    timetable: Timetable, sessions: Iterable[SessionMark], now: dt.datetime
) -> tuple[list[tuple[Slot, Status]], dict[dt.date, int]]:
    """Each slot's status, and the extra sessions per local date of the timetable."""
    slots = timetable.slots()
    opens = [slot.opens for slot in slots]
    done: set[int] = set()
    made_up: set[int] = set()
    failed: set[int] = set()
    extra: dict[dt.date, int] = {}
    outside: list[SessionMark] = []
    ordered = sorted(sessions, key=lambda s: s.started_at)
    for session in ordered:
        if session.outcome not in DONE_OUTCOMES | FAILED_OUTCOMES:
            continue
        inside = _slot_at(slots, opens, session.started_at)
        if inside is None:
            if session.outcome in DONE_OUTCOMES:
                outside.append(session)
        elif session.outcome in FAILED_OUTCOMES:
            failed.add(inside)
        elif inside in done:
            _count(extra, slots[inside].date)
        else:
            done.add(inside)
    for session in outside:
        date = timetable.local_date(session.started_at)
        earlier = [
            i
            for i, slot in enumerate(slots)
            if slot.date == date
            and slot.closes <= session.started_at
            and i not in done
            and i not in made_up
        ]
        if earlier:
            made_up.add(max(earlier, key=lambda i: slots[i].closes))
        elif timetable.first_day <= date <= timetable.last_day:
            _count(extra, date)
    statuses: list[tuple[Slot, Status]] = []
    for i, slot in enumerate(slots):
        status: Status
        if i in done:
            status = "done"
        elif now < slot.closes:
            status = "due"
        elif i in made_up:
            status = "late"
        elif i in failed:
            status = "failed"
        else:
            status = "missed"
        statuses.append((slot, status))
    return statuses, extra


def adherence(
    timetable: Timetable, sessions: Sequence[SessionMark], now: dt.datetime
) -> list[DayAdherence]:
    """One row per day of the timetable, in order."""
    statuses, extra = slot_statuses(timetable, sessions, now)
    days: dict[int, DayAdherence] = {}
    for slot, status in statuses:
        row = days.setdefault(
            slot.day, DayAdherence(slot.day, slot.date.isoformat(), len(timetable.windows))
        )
        setattr(row, status, getattr(row, status) + 1)
    for row in days.values():
        row.extra = extra.get(dt.date.fromisoformat(row.date), 0)
    return [days[d] for d in sorted(days)]


def totals(rows: Iterable[DayAdherence]) -> dict[str, int]:
    """The counts of many days (or participants) added up."""
    summed = dict.fromkeys(("windows", *STATUSES, "extra"), 0)
    for row in rows:
        for key in summed:
            summed[key] += int(getattr(row, key))
    return summed


def _slot_at(slots: Sequence[Slot], opens: list[dt.datetime], when: dt.datetime) -> int | None:
    """The slot holding `when` (slots are in time order and do not overlap)."""
    i = bisect.bisect_right(opens, when) - 1
    return i if i >= 0 and slots[i].holds(when) else None


def _count(counter: dict[dt.date, int], date: dt.date) -> None:
    counter[date] = counter.get(date, 0) + 1
