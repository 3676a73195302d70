"""A live view of a session, folded from its events: what a screen or a test shows.

view = SessionView.follow(session, on_change=lambda v: print(v.phase))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acudevice.plan.devices import format_level
from acudevice.session.cap import CapCause, percent_of
from acudevice.session.events import (
    CapLowered,
    Ended,
    Fault,
    LinkLost,
    Note,
    Progress,
    Reading,
    SessionEvent,
    SessionState,
    Started,
    StateChanged,
)

if TYPE_CHECKING:
    from acudevice.session.runner import Session

KEPT_NOTES = 8


@dataclass
class SessionView:
    """Levels in Pa or permille; `log` keeps the last few notes, `notes_total` counts all."""

    program: str = ""
    actuator: str = "pressure"
    total_ms: int = 0
    repeats: int = 1
    cap_level: int = 0
    full_level: int = 0
    elapsed_ms: int = 0
    repeat: int = 0
    phase: str = "starting"
    state: SessionState = SessionState.PREPARING
    channels: list[Reading] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    notes_total: int = 0
    session_id: int | None = None

    @property
    def paused(self) -> bool:
        return self.state is SessionState.PAUSED

    @property
    def intensity_percent(self) -> int:
        """The cap as a percentage of full intensity."""
        return percent_of(self.cap_level, self.full_level)

    @classmethod
    def follow(
        cls, session: Session, on_change: Callable[[SessionView], None] | None = None
    ) -> SessionView:
        """A view that follows `session` from now on, calling `on_change` after each event."""
        view = cls()

        def sink(event: SessionEvent) -> None:
            view.apply(event)
            if on_change is not None:
                on_change(view)

        session.subscribe(sink)
        return view

    def note(self, message: str) -> None:
        self.log.append(message)
        self.notes_total += 1
        del self.log[:-KEPT_NOTES]

    def apply(self, event: SessionEvent) -> None:
        if isinstance(event, Progress):
            self.elapsed_ms, self.repeat, self.phase = event.elapsed_ms, event.repeat, event.phase
            self.channels = list(event.readings)
        elif isinstance(event, Started):
            self.program, self.actuator = event.title, event.actuator
            self.total_ms, self.repeats = event.total_ms, event.repeats
            self.cap_level, self.full_level = event.cap_level, event.full_level
            self.session_id = event.session_id
            self.channels = [Reading(url, 0, 0, 0, "IDLE") for url in event.urls]
        elif isinstance(event, StateChanged):
            self.state = event.state
        elif isinstance(event, CapLowered):
            self.cap_level = event.level
            self.note(describe_cap(event, self.actuator))
        elif isinstance(event, Note):
            self.note(event.message)
        elif isinstance(event, Fault):
            self.note(f"fault {event.code}: {event.message}")
        elif isinstance(event, LinkLost):
            self.note(f"lost the link to {event.url}: {event.why}")
        elif isinstance(event, Ended):
            self.state = SessionState.ENDED
            self.cap_level = event.result.cap_level


def describe_cap(event: CapLowered, actuator: str) -> str:
    """One sentence for a lowered cap, the same on every surface."""
    level = format_level(event.level, actuator)
    if event.cause is CapCause.TOO_STRONG:
        felt = format_level(event.felt_level or 0, actuator)
        return f"too strong at {felt}: lowered to {level} and remembered"
    if event.cause is CapCause.INTENSITY and event.percent is not None:
        return f"intensity lowered to {event.percent} % ({level})"
    return f"cap lowered to {level}"
