"""What a session says while it runs: frozen events, in order, to every subscriber.

    unsubscribe = session.subscribe(print)

A subscriber is called in the session's task and must not block. The live view, the
gateway and tests all read a session this way; none reads its internals. Levels are Pa for
pressure and permille for vibration, times are milliseconds of the plan.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acudevice.session.cap import CapCause

if TYPE_CHECKING:
    from acudevice.session.model import SessionResult


class SessionState(enum.Enum):
    PREPARING = "preparing"
    """Connecting, screening and loading: nothing moves yet."""
    RUNNING = "running"
    PAUSED = "paused"
    RECOVERING = "recovering"
    """A band's link was lost: reconnecting, then restarting the repeat from its ramp."""
    STOPPING = "stopping"
    """Releasing (STOP): the band is coming down gently."""
    VENTING = "venting"
    """Venting now (ESTOP, or a safety alarm): the band is coming down at once."""
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Reading:
    """One band's latest sample, as a person would look at it."""

    url: str
    measured_level: int
    target_level: int
    battery_percent: int
    state: str
    """The firmware state's name: IDLE, RUNNING, ..."""


@dataclass(frozen=True, slots=True)
class Started:
    """Screened, journalled and about to load: the plan as it will run."""

    session_id: int | None
    program: str
    title: str
    actuator: str
    point: str
    total_ms: int
    repeats: int
    cap_level: int
    full_level: int
    """100 % intensity: the cap, or the plan's peak when the plan stays below it."""
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Running:
    """Every band accepted START (also after a reconnect); `start_skew_ms` for a pair."""

    start_skew_ms: float | None


@dataclass(frozen=True, slots=True)
class Progress:
    elapsed_ms: int
    repeat: int
    """0-based repeat of band 0's latest sample."""
    phase: str
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: SessionState
    why: str | None = None


@dataclass(frozen=True, slots=True)
class CapLowered:
    level: int
    previous: int
    cause: CapCause
    felt_level: int | None = None
    """For "too strong": the level measured when it was pressed."""
    percent: int | None = None
    """The new cap as a percentage of full intensity."""


@dataclass(frozen=True, slots=True)
class Note:
    message: str


@dataclass(frozen=True, slots=True)
class Fault:
    channel: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class LinkLost:
    channel: int
    url: str
    why: str


@dataclass(frozen=True, slots=True)
class Ended:
    result: SessionResult


SessionEvent = (
    Started | Running | Progress | StateChanged | CapLowered | Note | Fault | LinkLost | Ended
)
EventSink = Callable[[SessionEvent], None]
