"""What a past session's picture shows, built from its journal rows (pure; plots.py draws it).

The cap steps down where it changed (each "too strong" and each lower intensity), a
remembered comfortable maximum is drawn from the press that set it, and a session cut
short is marked where the band stopped following the plan, with the vent when it vented.
Each change is said in the words the live view used (`describe_cap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from acudevice.plan.devices import format_level
from acudevice.plan.schedule import Schedule
from acudevice.plots import Line, Steps, Stop, plot_schedule
from acudevice.protocol import FirmwareState
from acudevice.session.cap import CapCause
from acudevice.session.events import CapLowered
from acudevice.session.view import describe_cap
from acudevice.store import Sample, SessionRecord
from acudevice.store.models import CapChange, FaultRecord

_FOLLOWING = (int(FirmwareState.RUNNING), int(FirmwareState.PAUSED))


@dataclass(frozen=True)
class SessionPicture:
    title: str
    schedule: Schedule
    measured: tuple[tuple[float, float], ...]
    cap: Steps
    lines: tuple[Line, ...]
    events: tuple[tuple[float, str], ...]
    stop: Stop | None

    def draw(self, path: Path) -> Path:
        """PNG or SVG by the suffix; 0600 from its creation (it is health data)."""
        return plot_schedule(
            self.schedule,
            path,
            title=self.title,
            lines=self.lines,
            measured=self.measured,
            events=self.events,
            steps=(self.cap,),
            stop=self.stop,
            private=True,
        )


def said(change: CapChange, actuator: str) -> str:
    """A cap change as the live view said it when it happened."""
    cause = CapCause.TOO_STRONG if change.cause == "too-strong" else CapCause.INTENSITY
    event = CapLowered(
        change.level,
        change.previous,
        cause,
        felt_level=change.felt_level,
        percent=change.percent,
    )
    return describe_cap(event, actuator)


def cap_steps(record: SessionRecord, changes: Sequence[CapChange]) -> Steps:
    """The session's cap over time: screened at the start, stepping down at each change."""
    points = [(0.0, record.cap_level)]
    for change in changes:
        points.append(((change.t_ms or 0) / 1000, change.level))
    start = format_level(record.cap_level, record.actuator)
    if changes:
        end = format_level(changes[-1].level, record.actuator)
        label = f"cap {start}, lowered to {end}"
    else:
        label = f"cap {start}"
    return Steps(tuple(points), label, "hard")


def _stop(record: SessionRecord, samples: Sequence[Sample]) -> Stop | None:
    """Where a session ended short: at its last sample still following the plan."""
    if record.outcome in ("completed", "running"):
        return None
    following = [s for s in samples if s.state in _FOLLOWING]
    last = following[-1] if following else (samples[-1] if samples else None)
    t_s = 0.0 if last is None else last.t_ms / 1000
    detail = record.detail or ""
    if record.outcome == "stopped":
        if detail.startswith("stop "):
            return Stop(t_s, f"stopped {detail.removeprefix('stop ')}: released", vented=False)
        return Stop(t_s, f"stopped ({detail or 'cancelled'}): vented", vented=True)
    if record.outcome == "estopped":
        return Stop(t_s, f"{detail or 'emergency stop'}: vented", vented=True)
    if record.outcome == "faulted":
        return Stop(t_s, f"safety alarm ({detail.split(':')[0] or 'fault'}): vented", vented=True)
    if record.outcome == "link-lost":
        return Stop(t_s, "link lost: the band vents by its watchdog", vented=True)
    return Stop(t_s, "interrupted: the host ended", vented=False)


def session_picture(
    record: SessionRecord,
    samples: Sequence[Sample],
    faults: Sequence[FaultRecord],
    changes: Sequence[CapChange],
) -> SessionPicture:
    """`samples` of the first band; `changes` as `Journal.cap_changes` gives them."""
    schedule = Schedule.model_validate(record.schedule)
    measured = tuple((s.t_ms / 1000, float(s.measured_level)) for s in samples)
    last_t = measured[-1][0] if measured else 0.0
    events = [(last_t if f.t_ms is None else f.t_ms / 1000, f.code) for f in faults]
    events += [((c.t_ms or 0) / 1000, said(c, record.actuator)) for c in changes]
    lines = tuple(
        Line(
            c.level,
            f"comfort max remembered at {format_level(c.level, record.actuator)}",
            "soft",
            start_s=(c.t_ms or 0) / 1000,
        )
        for c in changes
        if c.cause == "too-strong"
    )
    return SessionPicture(
        title=f"Session {record.id}: {record.program} — {record.outcome}",
        schedule=schedule,
        measured=measured,
        cap=cap_steps(record, changes),
        lines=lines,
        events=tuple(sorted(events)),
        stop=_stop(record, samples),
    )
