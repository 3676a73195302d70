"""A participant's reminders on a clock: `check_reminders` (plan/reminders.py) run when due.

The gateway makes one `ReminderClock` per enrolled participant from their delivered protocol
(bridge/participant_protocol.py) and runs it as a task. It sleeps until the next reminder or
window close (at most `MAX_SLEEP_S`, so a wall clock that jumps, after a suspend or an NTP
step, is noticed), and checks again at once when `poke()`d: a session started or ended, so
reminders for that window stop. The clock (`now`) is given, so tests run it on the loop's
virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable, Sequence

from acudevice.plan.reminders import Reminder, ReminderSettings, check_reminders
from acudevice.plan.timetable import SessionMark, Slot, Timetable

MAX_SLEEP_S = 300.0
MIN_SLEEP_S = 0.001


class ReminderClock:
    def __init__(
        self,
        timetable: Timetable,
        settings: ReminderSettings | None,
        sessions: Callable[[], Sequence[SessionMark]],
        *,
        on_reminder: Callable[[Reminder], None],
        on_missed: Callable[[Slot], None],
        now: Callable[[], dt.datetime],
        since: dt.datetime | None = None,
    ) -> None:
        """`since`: the last time checked before (kept across restarts by the caller), so a
        window missed while the gateway was down is still reported; default: now."""
        self.timetable = timetable
        self.settings = settings
        self._sessions = sessions
        self._on_reminder = on_reminder
        self._on_missed = on_missed
        self._now = now
        self.since = since or now()
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Check again now (a session started or ended)."""
        self._poked.set()

    def check(self) -> dt.datetime | None:
        """One check: raise what fell due since the last; when the next one falls due."""
        now = self._now()
        found = check_reminders(self.timetable, self.settings, self._sessions(), self.since, now)
        self.since = now
        for slot in found.missed:
            self._on_missed(slot)
        for reminder in found.due:
            self._on_reminder(reminder)
        return found.next_at

    async def run(self) -> None:
        """Until the timetable's last window has closed (or the task is cancelled)."""
        while (next_at := self.check()) is not None:
            wait = (next_at - self._now()).total_seconds()
            self._poked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), min(max(wait, MIN_SLEEP_S), MAX_SLEEP_S))
