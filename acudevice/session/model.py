"""What a session reports while it runs and when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from acudevice.errors import AcuDeviceError
from acudevice.safety.screening import Verdict
from acudevice.store import Outcome

Command = Literal["too-strong", "pause", "resume", "stop", "estop"]


class SessionRefused(AcuDeviceError):
    """Screening did not allow the program on this device for this user."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        reasons = [str(f) for f in verdict.hard] or [str(f) for f in verdict.soft]
        hint = " (confirm soft limits with a reason to go ahead)" if not verdict.hard else ""
        super().__init__(
            f"{verdict.program} on {verdict.device} is {verdict.status}{hint}: "
            + "; ".join(reasons)
        )


@dataclass
class ChannelView:
    url: str
    measured_level: int = 0
    target_level: int = 0
    battery_percent: int = 0
    state: str = "IDLE"


@dataclass
class SessionView:
    """A snapshot for live views; levels in Pa or permille."""

    program: str
    actuator: str
    total_ms: int
    repeats: int
    cap_level: int
    elapsed_ms: int = 0
    repeat: int = 0
    phase: str = "starting"
    paused: bool = False
    channels: list[ChannelView] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    notes_total: int = 0

    def note(self, message: str) -> None:
        self.log.append(message)
        self.notes_total += 1
        del self.log[:-8]


@dataclass(frozen=True)
class SessionResult:
    session_id: int | None
    program: str
    outcome: Outcome
    detail: str | None
    peak_level: int
    cap_level: int
    actuator: str
    repeats_done: int
    repeats_planned: int
    start_skew_ms: float | None
    faults: tuple[str, ...]
    comfort_level: int | None

    def as_json(self) -> dict[str, object]:
        scale = 1000
        unit = "kpa" if self.actuator == "pressure" else "intensity"
        return {
            "session_id": self.session_id,
            "program": self.program,
            "outcome": self.outcome,
            "detail": self.detail,
            f"peak_measured_{unit}": self.peak_level / scale,
            f"cap_{unit}": self.cap_level / scale,
            "repeats_done": self.repeats_done,
            "repeats_planned": self.repeats_planned,
            "start_skew_ms": self.start_skew_ms,
            "faults": list(self.faults),
            f"comfort_max_{unit}": None
            if self.comfort_level is None
            else self.comfort_level / scale,
        }
