"""Reminders fall due in their window, on a virtual clock, across midnight and clock changes."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acudevice.bridge.reminders import ReminderClock
from acudevice.plan.reminders import ReminderSettings, check_reminders
from acudevice.plan.timetable import DailyWindow, SessionMark, Slot, Timetable

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *when: int) -> dt.datetime:
    return dt.datetime(*when, tzinfo=zone).astimezone(dt.UTC)  # type: ignore[misc]


@pytest.mark.looptime
async def test_reminders_fire_in_their_windows_on_a_virtual_clock_across_midnight() -> None:
    timetable = Timetable(
        timezone="Europe/London", first_day=dt.date(2027, 1, 10), days=2,
        windows=(DailyWindow(start="00:10", end="01:00"), DailyWindow(start="08:00", end="10:00")),
    )  # fmt: skip
    settings = ReminderSettings(before_min=30, every_min=20)
    loop = asyncio.get_running_loop()
    start = local(LONDON, 2027, 1, 10, 0, 0)
    origin = loop.time()

    def now() -> dt.datetime:
        return start + dt.timedelta(seconds=loop.time() - origin)

    sessions: list[SessionMark] = []
    fired: list[tuple[str, int, int, float]] = []
    missed: list[tuple[str, int]] = []
    clock = ReminderClock(
        timetable, settings, lambda: sessions,
        on_reminder=lambda r: fired.append(
            (r.at.astimezone(LONDON).strftime("%d %H:%M"), r.slot.window, r.n,
             (now() - r.at).total_seconds())
        ),
        on_missed=lambda s: missed.append((s.closes.astimezone(LONDON).strftime("%d %H:%M"), s.window)),
        now=now,
    )  # fmt: skip

    async def participant_starts_a_session() -> None:
        await asyncio.sleep((local(LONDON, 2027, 1, 10, 8, 45) - now()).total_seconds())
        sessions.append(SessionMark(now(), "running"))
        clock.poke()

    async with asyncio.timeout(3 * 86_400):  # virtual seconds
        await asyncio.gather(clock.run(), participant_starts_a_session())
    assert [f[:3] for f in fired] == [
        ("10 00:30", 1, 2), ("10 00:50", 1, 3),  # the first (09 23:40) was before we began
        ("10 07:30", 2, 1), ("10 08:20", 2, 2), ("10 08:40", 2, 3),  # then a session at 08:45
        ("10 23:40", 1, 1), ("11 00:30", 1, 2), ("11 00:50", 1, 3),  # the day before its window
        ("11 07:30", 2, 1), ("11 08:20", 2, 2), ("11 08:40", 2, 3), ("11 09:00", 2, 4),
        ("11 09:20", 2, 5), ("11 09:40", 2, 6),
    ]  # fmt: skip
    assert all(0 <= late < 0.01 for *_, late in fired), "each raised at its time"
    assert missed == [("10 01:00", 1), ("11 01:00", 1), ("11 10:00", 2)]
    assert now() >= local(LONDON, 2027, 1, 11, 10, 0), "ran to the last window's close"


def test_a_reminder_keeps_to_the_local_clock_across_a_clock_change() -> None:
    timetable = Timetable(
        timezone="America/New_York", first_day=dt.date(2027, 3, 13), days=2,
        windows=(DailyWindow(start="08:00", end="09:00"),),
    )  # fmt: skip
    settings = ReminderSettings(before_min=15, every_min=0)
    # Saturday 07:45 EST is 12:45 UTC; Sunday 07:45 EDT (clocks forward at 02:00) is 11:45 UTC
    saturday = check_reminders(
        timetable, settings, [], local(NEW_YORK, 2027, 3, 13, 0, 0),
        dt.datetime(2027, 3, 13, 12, 45, tzinfo=dt.UTC),
    )  # fmt: skip
    assert [r.at for r in saturday.due] == [dt.datetime(2027, 3, 13, 12, 45, tzinfo=dt.UTC)]
    sunday_early = check_reminders(
        timetable, settings, [], dt.datetime(2027, 3, 14, 5, 0, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 14, 11, 44, tzinfo=dt.UTC),
    )  # fmt: skip
    assert sunday_early.due == ()
    assert sunday_early.next_at == dt.datetime(2027, 3, 14, 11, 45, tzinfo=dt.UTC)
    sunday = check_reminders(
        timetable, settings, [], dt.datetime(2027, 3, 14, 11, 44, tzinfo=dt.UTC),
        dt.datetime(2027, 3, 14, 11, 45, tzinfo=dt.UTC),
    )  # fmt: skip
    assert [r.slot.date for r in sunday.due] == [dt.date(2027, 3, 14)]
    assert sunday.next_at == dt.datetime(2027, 3, 14, 13, 0, tzinfo=dt.UTC), "09:00 EDT close"


def test_a_late_check_gives_the_latest_reminder_only_and_a_closed_window_as_missed() -> None:
    timetable = Timetable(
        timezone="Europe/London", first_day=dt.date(2027, 6, 1), days=1,
        windows=(DailyWindow(start="08:00", end="10:00"), DailyWindow(start="13:00", end="15:00")),
    )  # fmt: skip
    settings = ReminderSettings(before_min=15, every_min=30)
    since = local(LONDON, 2027, 6, 1, 7, 0)
    now = local(LONDON, 2027, 6, 1, 13, 40)  # the gateway was away all morning
    found = check_reminders(timetable, settings, [], since, now)
    assert [(r.slot.window, r.at) for r in found.due] == [(2, local(LONDON, 2027, 6, 1, 13, 30))]
    assert [s.window for s in found.missed] == [1]
    # a session started in the window stops its reminders; one before it opens does not
    early = SessionMark(local(LONDON, 2027, 6, 1, 12, 55), "completed")
    assert check_reminders(timetable, settings, [early], since, now).due != ()
    inside = SessionMark(local(LONDON, 2027, 6, 1, 13, 5), "faulted")
    after = check_reminders(timetable, settings, [inside], since, now)
    assert after.due == () and after.next_at is None
    # no reminder settings: windows are still reported missed, nothing is raised
    quiet = check_reminders(timetable, None, [], since, now)
    assert quiet.due == () and [s.window for s in quiet.missed] == [1]
    assert quiet.next_at == local(LONDON, 2027, 6, 1, 15, 0)


def test_slots_know_what_they_hold() -> None:
    slot = Slot(1, dt.date(2027, 1, 1), 1, local(LONDON, 2027, 1, 1, 8, 0),
                local(LONDON, 2027, 1, 1, 10, 0))  # fmt: skip
    assert slot.holds(local(LONDON, 2027, 1, 1, 8, 0))
    assert not slot.holds(local(LONDON, 2027, 1, 1, 10, 0))


WEEK = Timetable(
    timezone="Europe/London", first_day=dt.date(2027, 3, 25), days=5,
    windows=(DailyWindow(start="00:30", end="02:30"), DailyWindow(start="13:00", end="15:00")),
)  # fmt: skip
instants = st.datetimes(
    min_value=dt.datetime(2027, 3, 24), max_value=dt.datetime(2027, 3, 31),
    timezones=st.just(dt.UTC),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    checks=st.lists(instants, min_size=1, max_size=30, unique=True),
    starts=st.lists(instants, max_size=8),
    before=st.integers(0, 90),
    every=st.integers(0, 60),
)
def test_checked_step_by_step_every_window_is_reminded_in_time_and_missed_once(
    checks: list[dt.datetime], starts: list[dt.datetime], before: int, every: int
) -> None:
    """Any sequence of checks (a gateway on any schedule, across the spring clock change)."""
    settings_ = ReminderSettings(before_min=before, every_min=every)
    sessions = [SessionMark(t, "completed") for t in starts]
    since = dt.datetime(2027, 3, 24, tzinfo=dt.UTC)
    missed: list[Slot] = []
    for now in sorted(checks):
        found = check_reminders(WEEK, settings_, sessions, since, now)
        for r in found.due:
            assert since < r.at <= now < r.slot.closes
            assert r.slot.opens - dt.timedelta(minutes=before) <= r.at
            assert not any(r.slot.holds(t) for t in starts), "a session stops its reminders"
        assert found.next_at is None or found.next_at > now
        missed += found.missed
        since = now
    expected = [
        s for s in WEEK.slots()
        if s.closes <= since and not any(s.holds(t) for t in starts)
    ]  # fmt: skip
    assert missed == expected, "each unattended window reported missed once, in order"
