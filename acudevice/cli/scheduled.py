"""`acudevice run --scheduled`: a trial participant's session, on a single host.

The program is the one the study centre delivered under the participant's label, kept in
this host's journal by `acudevice study fetch` (or by a bridge that ran here). It is run as it
is, through the same Session as any program; nothing printed names the arm or the real
program, and a refusal offers no other program (that could be the other arm's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from acudevice.bridge.participant_protocol import decode
from acudevice.bridge.reminding import describe
from acudevice.errors import InputError, Problem
from acudevice.plan.program import Program
from acudevice.plan.reminders import current_window
from acudevice.plan.timetable import SessionMark
from acudevice.store import Journal

FETCH = "acudevice study fetch ID --broker URL"


@dataclass(frozen=True)
class Scheduled:
    participant: str
    label: str
    program: Program
    where: str
    """Where the session falls in the timetable, for a person."""


def scheduled_session(
    journal: Journal, participant: str | None, now: dt.datetime | None = None
) -> Scheduled:
    """The participant's scheduled session (the only one kept here if `participant` is None);
    InputError saying what to do when there is none."""
    if participant is not None:
        stored = journal.protocols.get(participant)
        if stored is None:
            raise InputError([Problem("--scheduled", "", f"no study protocol for {participant} "
                                      f"on this host: fetch it first ({FETCH})")])  # fmt: skip
    else:
        kept = journal.protocols.all()
        if not kept:
            raise InputError(
                [Problem("--scheduled", "", f"no study protocol on this host: fetch it ({FETCH})")]
            )
        if len(kept) > 1:
            who = ", ".join(k.participant for k in kept)
            raise InputError([Problem("--scheduled", "", f"protocols for {who} on this host: "
                                      "say whose session with --participant ID")])  # fmt: skip
        stored = kept[0]
    protocol = decode(stored.body, stored.topic)
    if protocol is None:  # never kept empty, but a hand-edited journal is not our promise
        raise InputError([Problem(stored.topic, "", "an empty protocol was kept")])
    now = now or dt.datetime.now(dt.UTC)
    marks = [
        SessionMark(dt.datetime.fromtimestamp(t, dt.UTC), outcome)
        for t, outcome in journal.protocols.session_starts(protocol.participant)
    ]
    t = protocol.schedule
    slot, _ = current_window(t, protocol.reminders, marks, now)
    if slot is None:
        where = f"the timetable's last window has closed ({t.last_day})"
    elif slot.opens <= now:
        where = f"{describe(slot, t.timezone)}: open now"
    else:
        where = f"no window open now; the next is {describe(slot, t.timezone)}"
    return Scheduled(protocol.participant, protocol.label, protocol.program, where)
