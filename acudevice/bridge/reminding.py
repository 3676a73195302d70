"""One enrolled participant on a gateway: their reminder clock, and what it says on MQTT.

Reminders become `session-due` events, windows that close with no session `session-missed`
events (and rows in the journal, once each), and the band's retained `schedule` topic says
whether a session is due now (Home Assistant's "Session due"). Each names the label, never
the arm or the real program. bridge/schedule.py makes one per participant with a protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from acudevice.bridge.participant_protocol import ParticipantProtocol
from acudevice.bridge.payloads import EventKind, EventPayload, SchedulePayload, WindowPayload
from acudevice.bridge.reminders import ReminderClock
from acudevice.plan.reminders import Reminder, current_window
from acudevice.plan.timetable import SessionMark, Slot, zone
from acudevice.store import Journal, StoreError

log = logging.getLogger("acudevice.bridge.schedule")

SCHEDULE_LEAF = "schedule"


class Outlet(Protocol):
    """The bridge, as the schedules see it."""

    def publish(
        self, topic_leaf: str, band: str, payload: str, *, qos: int, retain: bool
    ) -> None: ...

    def event(self, payload: EventPayload) -> None: ...


def window_payload(slot: Slot, timezone: str) -> WindowPayload:
    tz = zone(timezone)
    return WindowPayload(
        day=slot.day,
        date=slot.date.isoformat(),
        window=slot.window,
        opens=slot.opens.astimezone(tz).isoformat(),
        closes=slot.closes.astimezone(tz).isoformat(),
        timezone=timezone,
    )


def describe(slot: Slot, timezone: str) -> str:
    """ "window 2 on 2027-01-16, 13:00-15:00 (Europe/London)"."""
    tz = zone(timezone)
    opens, closes = slot.opens.astimezone(tz), slot.closes.astimezone(tz)
    return f"window {slot.window} on {slot.date}, {opens:%H:%M}-{closes:%H:%M} ({timezone})"


@dataclass
class Seen:
    """What this run saw of a participant's sessions and windows (all there is without a
    journal); session marks are stamped by the schedule's own clock as they start."""

    marks: list[SessionMark] = field(default_factory=list)
    missed: set[tuple[str, int, int]] = field(default_factory=set)


class Reminding:
    def __init__(
        self,
        protocol: ParticipantProtocol,
        band: str,
        outlet: Outlet,
        *,
        journal: Journal | None,
        seen: Seen,
        now: Callable[[], dt.datetime],
        since: dt.datetime | None,
    ) -> None:
        self.protocol = protocol
        self.band = band
        self.journal = journal
        self._outlet = outlet
        self._seen = seen
        self._now = now
        self.clock = ReminderClock(
            protocol.schedule,
            protocol.reminders,
            self.marks,
            on_reminder=self._remind,
            on_missed=self._missed,
            now=now,
            since=since,
            on_checked=self._checked,
        )
        self._task: asyncio.Task[None] | None = None
        self._shown: SchedulePayload | None = None

    @property
    def participant(self) -> str:
        return self.protocol.participant

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                self.clock.run(), name=f"acudevice-reminders-{self.participant}"
            )

    def stop(self) -> asyncio.Task[None] | None:
        """Stop reminding; the task, to wait for if the caller may."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    def marks(self) -> list[SessionMark]:
        """The participant's sessions: the journal's (kept across restarts) and this run's."""
        marks = list(self._seen.marks)
        if self.journal is not None:
            try:
                starts = self.journal.protocols.session_starts(self.participant)
            except StoreError as exc:
                log.error("could not read %s's sessions: %s", self.participant, exc)
                starts = []
            marks += [SessionMark(dt.datetime.fromtimestamp(t, dt.UTC), o) for t, o in starts]
        return marks

    # ---------------------------------------------------------------- what the clock says

    def _remind(self, reminder: Reminder) -> None:
        tz = self.protocol.schedule.timezone
        self.event(
            "session-due",
            window=window_payload(reminder.slot, tz),
            reminder=reminder.n,
            detail=f"due: {describe(reminder.slot, tz)}, reminder {reminder.n}",
        )

    def _missed(self, slot: Slot) -> None:
        study = self.protocol.study
        key = (study, slot.day, slot.window)
        new = key not in self._seen.missed
        self._seen.missed.add(key)
        if self.journal is not None:
            try:
                new = self.journal.protocols.record_missed(
                    self.participant, study, day=slot.day, window=slot.window,
                    opens=slot.opens, closes=slot.closes,
                )  # fmt: skip
            except StoreError as exc:
                log.error("could not record %s's missed window: %s", self.participant, exc)
        if new:  # once, even after a restart that checks the same close again
            tz = self.protocol.schedule.timezone
            self.event(
                "session-missed",
                window=window_payload(slot, tz),
                detail=f"missed: {describe(slot, tz)} closed with no session",
            )

    def _checked(self, at: dt.datetime) -> None:
        if self.journal is not None:
            try:
                self.journal.protocols.checked(self.participant, at)
            except StoreError as exc:
                log.error("could not keep %s's reminder time: %s", self.participant, exc)
        self.publish_state(at=at)

    # ---------------------------------------------------------------- out

    def _missed_count(self) -> int:
        study = self.protocol.study
        if self.journal is not None:
            with contextlib.suppress(StoreError):
                return len(self.journal.protocols.missed(self.participant, study))
        return sum(1 for key in self._seen.missed if key[0] == study)

    def state(self, now: dt.datetime) -> SchedulePayload:
        p = self.protocol
        slot, due = current_window(p.schedule, p.reminders, self.marks(), now)
        return SchedulePayload(
            label=p.label,
            due=due,
            window=window_payload(slot, p.schedule.timezone) if slot is not None else None,
            first_day=p.schedule.first_day.isoformat(),
            last_day=p.schedule.last_day.isoformat(),
            windows_per_day=len(p.schedule.windows),
            missed=self._missed_count(),
            participant=self.participant,
            ts=now.timestamp(),
        )

    def publish_state(self, *, at: dt.datetime | None = None, force: bool = False) -> None:
        """The retained `schedule` state, when it changed (or `force`: after a connect)."""
        state = self.state(at or self._now())
        before = self._shown
        if not force and before is not None and _same(before, state):
            return
        self._shown = state
        self._outlet.publish(SCHEDULE_LEAF, self.band, state.model_dump_json(), qos=1, retain=True)

    def clear(self, why: str) -> None:
        """The schedule is gone: its retained state too, and say so."""
        self._outlet.publish(SCHEDULE_LEAF, self.band, "", qos=1, retain=True)
        self.event("schedule-cleared", detail=f"{why}: no more reminders")

    def event(self, kind: EventKind, **fields: object) -> None:
        self._outlet.event(
            EventPayload.model_validate(
                {
                    "event": kind,
                    "band": self.band,
                    "participant": self.participant,
                    "ts": self._now().timestamp(),
                    "program": self.protocol.label,
                    **fields,
                }
            )
        )


def _same(a: SchedulePayload, b: SchedulePayload) -> bool:
    return a.model_dump(exclude={"ts"}) == b.model_dump(exclude={"ts"})
