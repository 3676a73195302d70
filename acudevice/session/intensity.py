"""Lowering a running session's intensity: a cap that only goes down, never a comfort report.

A remote dial (Home Assistant's "intensity") may take the level down to a percentage of the
session's full intensity: the cap it started with, or the program's peak level when that is
lower (a 20 kPa cap over a 12 kPa plan would otherwise make "50 %" change almost nothing).
It uses the same path as "too strong" (SET_LIMITS lower, then the monitors hold the lower
cap) but records no comfortable maximum for the point: it is a preference for this session,
not a report of discomfort. Raising is never possible here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from acudevice.device import Device
from acudevice.safety.screening import Verdict
from acudevice.session.monitor import ChannelMonitor
from acudevice.session.recorder import Recorder

RAISE_REFUSED = "intensity can only be lowered during a session; start a new session for more"


@dataclass
class IntensityRequest:
    """Queued into the session's inbox so it is applied between telemetry samples, in order."""

    percent: int
    answer: asyncio.Future[str | None]

    def answer_once(self, refusal: str | None) -> None:
        if not self.answer.done():
            self.answer.set_result(refusal)


def full_intensity(verdict: Verdict) -> int:
    """100 %: the starting cap, or the planned peak when the plan stays below it."""
    assert verdict.limits is not None
    cap = verdict.limits.cap_level
    peak = verdict.schedule.peak_level if verdict.schedule is not None else cap
    return min(cap, peak) if peak > 0 else cap


def percent_of(level: int, full_level: int) -> int:
    """A cap as a percentage of full intensity; a cap above the plan's peak is 100 %."""
    return min(100, round(100 * level / full_level)) if full_level > 0 else 0


async def lower_intensity(
    request: IntensityRequest,
    full_level: int,
    devices: Sequence[Device],
    monitors: Sequence[ChannelMonitor],
    record: Recorder,
) -> int | None:
    """Apply one request; the new cap level, or None when refused (the answer says why)."""
    current = min(m.cap_level for m in monitors)
    level = max(round(full_level * request.percent / 100), 1)
    now = percent_of(current, full_level)
    if level >= current or request.percent >= now:
        request.answer_once(f"{RAISE_REFUSED} (now at {now} %, asked {request.percent} %)")
        return None
    try:
        await asyncio.gather(*(d.set_limits(level) for d in devices))
    except BaseException:
        request.answer_once("the band did not accept the lower limit; the session ends")
        raise
    for m in monitors:
        m.lower_cap(level)
    if record.view is not None:
        record.view.cap_level = level
    record.note(f"intensity lowered to {request.percent} %")
    request.answer_once(None)
    return level


TOO_STRONG_FACTOR = 0.7


async def too_strong(
    devices: Sequence[Device], monitors: list[ChannelMonitor], record: Recorder, point: str
) -> None:
    """Drop at once to a gentler level and remember it as this point's comfortable maximum
    (unlike `lower_intensity`, this is a report of discomfort)."""
    felt = max(m.felt_level for m in monitors)
    gentler = max(int(min(felt, monitors[0].cap_level) * TOO_STRONG_FACTOR), 1)
    await asyncio.gather(*(d.set_limits(gentler) for d in devices))
    for m in monitors:
        m.lower_cap(gentler)
    now = max((m.last.measured_level for m in monitors if m.last is not None), default=0)
    record.comfort(point, now, gentler)
