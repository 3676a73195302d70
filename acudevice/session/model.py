"""How a session ends: one `SessionResult`, whatever happened; the commands it takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from acudevice.errors import AcuDeviceError
from acudevice.safety.screening import Verdict
from acudevice.store import Outcome

Command = Literal["too-strong", "pause", "resume", "stop", "estop"]
ResultOutcome = Outcome | Literal["refused"]
"""`refused`: screening did not allow the program; nothing was sent and nothing journalled."""


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


@dataclass(frozen=True)
class Ending:
    """How the watch ended, decided in one place; `vent` when the bands must vent now."""

    outcome: ResultOutcome
    detail: str
    vent: bool = True
    error: AcuDeviceError | None = None


@dataclass(frozen=True)
class SessionResult:
    session_id: int | None
    program: str
    outcome: ResultOutcome
    detail: str | None
    peak_level: int
    cap_level: int
    """The cap at the end: lowered by "too strong" or intensity, never raised."""
    actuator: str
    repeats_done: int
    repeats_planned: int
    start_skew_ms: float | None
    faults: tuple[str, ...]
    comfort_level: int | None
    """The maximum remembered for the point by a "too strong" in this session."""
    screened_cap_level: int = 0
    """The cap screening allowed at the start."""
    verdict: Verdict | None = field(default=None, compare=False, repr=False)
    error: AcuDeviceError | None = field(default=None, compare=False)
    """What stopped the session from starting or going on (a link, a refusal), if anything."""

    @property
    def refused(self) -> bool:
        return self.outcome == "refused"

    def raise_for_outcome(self) -> None:
        """Raise the error behind an outcome other than completed or stopped."""
        if self.outcome in ("completed", "stopped"):
            return
        if self.refused and self.verdict is not None:
            raise SessionRefused(self.verdict)
        raise self.error or AcuDeviceError(f"session {self.outcome}: {self.detail}")

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
            f"screened_cap_{unit}": self.screened_cap_level / scale,
            "repeats_done": self.repeats_done,
            "repeats_planned": self.repeats_planned,
            "start_skew_ms": self.start_skew_ms,
            "faults": list(self.faults),
            f"comfort_max_{unit}": None
            if self.comfort_level is None
            else self.comfort_level / scale,
        }
