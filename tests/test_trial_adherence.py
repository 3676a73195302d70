"""Adherence against a timetable: a known week, clock changes, and what always adds up."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.plan.adherence import STATUSES, adherence, slot_statuses
from acudevice.plan.timetable import DailyWindow, SessionMark, Timetable

pytestmark = pytest.mark.unit
LONDON = ZoneInfo("Europe/London")
WEEK = Timetable(
    timezone="Europe/London",
    first_day=dt.date(2027, 3, 22),  # Monday; the clocks go forward on Sunday 28 March
    days=7,
    windows=(
        DailyWindow(start="08:00", end="10:00"),
        DailyWindow(start="13:00", end="15:00"),
        DailyWindow(start="19:00", end="21:00"),
    ),
)


def at(day: int, hhmm: str) -> dt.datetime:
    """Local time in London on March `day` 2027."""
    hours, minutes = map(int, hhmm.split(":"))
    return dt.datetime(2027, 3, day, hours, minutes, tzinfo=LONDON)


def session(day: int, hhmm: str, outcome: str = "completed") -> SessionMark:
    return SessionMark(at(day, hhmm).astimezone(dt.UTC), outcome)


KNOWN_WEEK = [
    # Monday: one in each window (completed or stopped by the participant: both done)
    session(22, "08:30"), session(22, "13:10", "stopped"), session(22, "19:05"),
    # Tuesday: a fault, then done in the same window; two in the afternoon; no evening
    session(23, "09:00", "faulted"), session(23, "09:20"), session(23, "14:00"),
    session(23, "14:30"),
    # Wednesday: late for the morning; no afternoon; late for the evening
    session(24, "10:30"), session(24, "21:30"),
    # Thursday: early (before any window), then every window ended by the band or link
    session(25, "07:30"), session(25, "08:15", "faulted"), session(25, "13:30", "link-lost"),
    session(25, "19:30", "interrupted"),
    # Friday: nothing. Saturday: one late at night, after the evening window
    session(27, "23:30"),
    # Sunday, the clocks gone forward: at the very opening, and a minute before the close
    session(28, "08:00"), session(28, "14:59"),
    # after the timetable: not counted
    session(29, "08:30"),
]  # fmt: skip


def test_a_known_week_counts_done_late_failed_missed_due_and_extra() -> None:
    now = at(28, "20:00").astimezone(dt.UTC)  # Sunday evening, its last window open
    rows = adherence(WEEK, KNOWN_WEEK, now)
    got = [(r.date, r.done, r.late, r.failed, r.missed, r.due, r.extra) for r in rows]
    assert got == [
        ("2027-03-22", 3, 0, 0, 0, 0, 0),
        ("2027-03-23", 2, 0, 0, 1, 0, 1),
        ("2027-03-24", 0, 2, 0, 1, 0, 0),
        ("2027-03-25", 0, 0, 3, 0, 0, 1),
        ("2027-03-26", 0, 0, 0, 3, 0, 0),
        ("2027-03-27", 0, 1, 0, 2, 0, 0),
        ("2027-03-28", 2, 0, 0, 0, 1, 0),
    ]
    assert [r.day for r in rows] == list(range(1, 8)) and {r.windows for r in rows} == {3}


def test_which_window_a_late_session_makes_up_for() -> None:
    statuses, _ = slot_statuses(WEEK, KNOWN_WEEK, at(29, "12:00").astimezone(dt.UTC))
    wednesday = [status for slot, status in statuses if slot.date == dt.date(2027, 3, 24)]
    assert wednesday == ["late", "missed", "late"]
    sunday = [status for slot, status in statuses if slot.date == dt.date(2027, 3, 28)]
    assert sunday == ["done", "done", "missed"], "the open window closed unattended"


def test_windows_follow_the_local_clock_across_the_change() -> None:
    slots = WEEK.slots()
    saturday, sunday = slots[15], slots[18]
    assert saturday.opens == dt.datetime(2027, 3, 27, 8, 0, tzinfo=dt.UTC)  # GMT
    assert sunday.opens == dt.datetime(2027, 3, 28, 7, 0, tzinfo=dt.UTC)  # BST
    assert sunday.closes - sunday.opens == dt.timedelta(hours=2)


def test_a_window_in_the_skipped_hour_moves_later_and_keeps_its_length() -> None:
    spring = Timetable(
        timezone="Europe/London", first_day=dt.date(2027, 3, 28), days=1,
        windows=(DailyWindow(start="01:15", end="01:45"),),
    )  # fmt: skip
    [slot] = spring.slots()
    assert slot.opens == dt.datetime(2027, 3, 28, 1, 15, tzinfo=dt.UTC)  # 02:15 BST
    assert slot.closes - slot.opens == dt.timedelta(minutes=30)
    autumn = spring.model_copy(update={"first_day": dt.date(2027, 10, 31)})
    [slot] = autumn.slots()
    assert slot.opens == dt.datetime(2027, 10, 31, 0, 15, tzinfo=dt.UTC), "the first 01:15"


def test_an_empty_timetable_day_by_day_is_all_due_then_all_missed() -> None:
    before = adherence(WEEK, [], at(21, "12:00").astimezone(dt.UTC))
    assert sum(r.due for r in before) == 21
    after = adherence(WEEK, [], at(29, "12:00").astimezone(dt.UTC))
    assert sum(r.missed for r in after) == 21


outcomes = st.sampled_from(
    ["completed", "stopped", "running", "faulted", "estopped", "link-lost", "interrupted"]
)
marks = st.builds(
    SessionMark,
    st.datetimes(
        min_value=dt.datetime(2027, 3, 21), max_value=dt.datetime(2027, 3, 30),
        timezones=st.just(dt.UTC),
    ),
    outcomes,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    sessions=st.lists(marks, max_size=40),
    now=st.datetimes(
        min_value=dt.datetime(2027, 3, 20), max_value=dt.datetime(2027, 4, 2),
        timezones=st.just(dt.UTC),
    ),
)  # fmt: skip
def test_every_window_is_exactly_one_status_and_more_sessions_never_lower_adherence(
    sessions: list[SessionMark], now: dt.datetime
) -> None:
    rows = adherence(WEEK, sessions, now)
    for row in rows:
        assert sum(getattr(row, s) for s in STATUSES) == row.windows
    statuses, _ = slot_statuses(WEEK, sessions, now)
    for slot, status in statuses:
        assert (status == "due") == (now < slot.closes and status != "done")
    more = adherence(WEEK, [*sessions, SessionMark(now, "completed")], now)
    assert sum(r.done + r.late for r in more) >= sum(r.done + r.late for r in rows)
