"""A gateway's side of a trial: its participants' protocols, and what their bands may run
(docs/trials.md, "Sessions").

For each participant the gateway serves, the bridge subscribes to their protocol
(`<prefix>/study/participants/<ID>/protocol`, retained, QoS 1) and reads it with
`participant_protocol.decode`: a message that is refused is logged, naming the topic and the
field, and changes nothing. The latest is kept in the journal (`Journal.protocols`) with when
its reminders were last checked, so after a restart the schedule runs before the broker is
back and a window that closed meanwhile is still reported missed, once. The retained message
comes again on every connect; the same protocol delivered again (a new `issued_at`) changes
nothing. An empty message, or a withdrawal notice, means withdrawn: the schedule is dropped
and reminding stops. Each enrolled participant's reminders run in bridge/reminding.py.

A band whose participant has a protocol runs only the delivered program (`start-scheduled`,
or the Home Assistant button), which every surface shows by its label.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from acudevice.bridge.mqtt import Inbound, MqttLink
from acudevice.bridge.participant_protocol import ParticipantProtocol, decode
from acudevice.bridge.participants import Participants
from acudevice.bridge.reminding import Outlet, Reminding, Seen
from acudevice.bridge.topics import protocol_topic
from acudevice.errors import InputError
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.plan.timetable import SessionMark
from acudevice.session.events import Ended, SessionEvent, Started
from acudevice.session.runner import Session
from acudevice.store import Journal, StoreError

log = logging.getLogger("acudevice.bridge.schedule")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _content(protocol: ParticipantProtocol) -> dict[str, object]:
    """Everything but when it was issued: enrolling again issues the same protocol anew."""
    return protocol.model_dump(exclude={"issued_at"})


def _same_timetable(a: ParticipantProtocol, b: ParticipantProtocol) -> bool:
    return a.study == b.study and a.schedule == b.schedule and a.reminders == b.reminders


class Schedules:
    def __init__(
        self,
        prefix: str,
        participants: Participants,
        outlet: Outlet,
        *,
        journal: Journal | None,
        catalog: PointCatalog | None = None,
        now: Callable[[], dt.datetime] = utc_now,
        rediscover: Callable[[str], None] = lambda band: None,
    ) -> None:
        """`now`: the wall clock (UTC) reminders keep to; `rediscover(band)`: announce the
        band to Home Assistant again (its controls follow its schedule)."""
        self.journal = journal
        self._outlet = outlet
        self._catalog = catalog
        self._now = now
        self._rediscover = rediscover
        self._band_of = {p: band for band, p in participants.by_band.items()}
        self.topics = {protocol_topic(prefix, p): p for p in self._band_of}
        self._enrolled: dict[str, Reminding] = {}
        self._seen = {p: Seen() for p in self._band_of}
        self._running = False
        if journal is not None:
            self._load(journal)

    def _load(self, journal: Journal) -> None:
        for stored in journal.protocols.all():
            if stored.participant not in self._band_of or self._withdrawn(stored.participant):
                continue
            try:
                protocol = decode(stored.body, stored.topic, self._catalog)
            except InputError as exc:
                _refused(stored.topic, exc, "the journal's copy of the study protocol")
                continue
            if protocol is not None:
                at = stored.checked_at or stored.received_at
                self._take(protocol, since=dt.datetime.fromtimestamp(at, dt.UTC))

    def _withdrawn(self, participant: str) -> bool:
        return self.journal is not None and self.journal.has_withdrawn(participant)

    # ---------------------------------------------------------------- what a band may run

    def _of_band(self, band: str) -> Reminding | None:
        return next((e for e in self._enrolled.values() if e.band == band), None)

    def program_of(self, band: str) -> Program | None:
        """The program of the band's participant's scheduled session, if they have one."""
        enrolled = self._of_band(band)
        return enrolled.protocol.program if enrolled is not None else None

    def label_of(self, band: str) -> str | None:
        enrolled = self._of_band(band)
        return enrolled.protocol.label if enrolled is not None else None

    def shown_name(self, band: str, program: Program) -> str:
        """What every surface calls `program` on `band`: the label for the scheduled session."""
        enrolled = self._of_band(band)
        if enrolled is not None and program == enrolled.protocol.program:
            return enrolled.protocol.label
        return program.name

    def refusal(self, band: str, program: Program) -> str | None:
        """Why `program` may not run on `band` (its participant is in a trial), or None."""
        enrolled = self._of_band(band)
        if enrolled is None or program == enrolled.protocol.program:
            return None
        return (
            f"band {band} runs only its participant's scheduled session "
            f"({enrolled.protocol.label!r}): send cmd/start-scheduled"
        )

    # ---------------------------------------------------------------- the broker

    async def subscribe(self, link: MqttLink) -> None:
        for topic in self.topics:
            await link.subscribe(topic, qos=1)

    def announce(self) -> None:
        """Every schedule state again (after a connect, the broker may have lost it)."""
        for enrolled in self._enrolled.values():
            enrolled.publish_state(force=True)

    def dispatch(self, message: Inbound) -> bool:
        """Take a participant's protocol; False for any other message."""
        participant = self.topics.get(message.topic)
        if participant is None:
            return False
        try:
            protocol = decode(message.payload, message.topic, self._catalog)
        except InputError as exc:
            _refused(message.topic, exc, "the study protocol")
            return True
        if protocol is None:
            self.withdraw(participant, "the study protocol was withdrawn")
        else:
            self._receive(protocol, message.topic, message.payload)
        return True

    def _receive(self, protocol: ParticipantProtocol, topic: str, body: bytes) -> None:
        participant = protocol.participant
        if self._withdrawn(participant):
            log.warning("ignored the study protocol on %s: %s has withdrawn", topic, participant)
            return
        held = self._enrolled.get(participant)
        if held is not None and _content(protocol) == _content(held.protocol):
            return  # delivered again (a reconnect, or the same enrolment run again)
        same = held is not None and _same_timetable(held.protocol, protocol)
        if self.journal is not None:
            try:
                self.journal.protocols.keep(
                    participant, topic=topic, study=protocol.study, label=protocol.label,
                    program=protocol.program.name, body=body, keep_checked=same,
                )  # fmt: skip
            except StoreError as exc:  # the schedule runs all the same, until a restart
                log.error("could not keep %s's study protocol: %s", participant, exc)
        since = held.clock.since if held is not None and same else None
        if held is not None:
            held.stop()
        enrolled = self._take(protocol, since=since)
        t = protocol.schedule
        enrolled.event(
            "schedule-received",
            detail=f"{t.days} days from {t.first_day}, {len(t.windows)} window(s) a day "
            f"({t.timezone})",
        )
        enrolled.publish_state(force=True)
        self._rediscover(enrolled.band)

    def withdraw(self, participant: str, why: str) -> None:
        """Drop the participant's schedule: no more reminders, no more scheduled session."""
        held = self._enrolled.pop(participant, None)
        if self.journal is not None:
            with contextlib.suppress(StoreError):
                self.journal.protocols.drop(participant)
        if held is None:
            return
        held.stop()
        held.clear(why)
        self._rediscover(held.band)

    # ---------------------------------------------------------------- clocks

    def _take(self, protocol: ParticipantProtocol, *, since: dt.datetime | None) -> Reminding:
        who = protocol.participant
        enrolled = Reminding(
            protocol, self._band_of[who], self._outlet, journal=self.journal,
            seen=self._seen[who], now=self._now, since=since,
        )  # fmt: skip
        self._enrolled[who] = enrolled
        if self._running:
            enrolled.start()
        return enrolled

    async def run(self) -> None:
        """Run every participant's reminders until cancelled."""
        self._running = True
        for enrolled in self._enrolled.values():
            enrolled.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._running = False
            tasks = [t for e in self._enrolled.values() if (t := e.stop()) is not None]
            await asyncio.gather(*tasks, return_exceptions=True)

    def poke(self) -> None:
        """Check every schedule now (a session started or ended, or the clock moved)."""
        for enrolled in self._enrolled.values():
            enrolled.clock.poke()

    # ---------------------------------------------------------------- sessions

    def follow(self, session: Session, band: str) -> None:
        """Note when the band's participant's sessions start and end: reminders for a window
        stop once a session has started in it."""
        participant = next((p for p, b in self._band_of.items() if b == band), None)
        if participant is None:
            return
        seen = self._seen[participant]
        index: list[int] = []

        def on(event: SessionEvent) -> None:
            if isinstance(event, Started):
                index.append(len(seen.marks))
                seen.marks.append(SessionMark(self._now(), "running"))
            elif isinstance(event, Ended) and index:
                mark = seen.marks[index[0]]
                seen.marks[index[0]] = SessionMark(mark.started_at, event.result.outcome)
            else:
                return
            held = self._enrolled.get(participant)
            if held is not None:
                held.clock.poke()

        session.subscribe(on)


def _refused(topic: str, exc: InputError, what: str) -> None:
    for problem in exc.problems:
        log.warning("ignored %s on %s: %s", what, topic, problem)
