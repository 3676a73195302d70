"""Ways forward from a verdict that is not "ok": what would pass, found by screening it.

Every way offered has been screened in full and passed, so an offer is never a guess: the
gentler flags (`--at-comfort`, `--at-halved-cap`, `--side`) with the peak the program would
run at, and a gentler shipped program (the same points or indication) that passes as it
is, or on one side. Confirming (`--confirm`) is not among them: it is the less safe way,
and the verdict itself says how.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from acudevice.errors import InputError
from acudevice.plan.devices import PressureDevice, VibrationDevice
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.safety.fitting import Adjustment, OneSide, adjust
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict, screen

MAX_OTHER_PROGRAMS = 3


@dataclass(frozen=True)
class WayForward:
    program: str
    adjustment: Adjustment
    peak_level: int
    """The highest level the program would run at (Pa or permille)."""
    other_program: bool
    """A different, gentler program rather than this one adjusted."""
    notes: tuple[str, ...] = ()


def _sides(program: Program) -> list[OneSide | None]:
    if any(site.side == "both" for site in program.sites):
        return [None, "left", "right"]
    return [None]


def _passing(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
    adjustments: Iterable[Adjustment],
    confirm_reason: str | None,
) -> list[tuple[Adjustment, Verdict, tuple[str, ...]]]:
    """The fewest-flag adjustments under which the program passes: none whose flags include
    another passing one's (a superset says nothing new)."""
    found: list[tuple[Adjustment, Verdict, tuple[str, ...]]] = []
    for adjustment in sorted(adjustments, key=lambda a: len(a.flags)):
        if any(set(kept.flags) <= set(adjustment.flags) for kept, _, _ in found):
            continue
        try:
            adjusted = adjust(program, device, catalog, profile, adjustment)
        except InputError:
            continue  # this flag cannot apply to this person
        verdict = screen(adjusted.program, device, catalog, profile, confirm_reason=confirm_reason)
        if verdict.runnable:
            found.append((adjustment, verdict, adjusted.notes))
    return found


def _related(one: Program, other: Program, catalog: PointCatalog) -> bool:
    points = {catalog.resolve(s.point).code for s in one.sites}
    if points & {catalog.resolve(s.point).code for s in other.sites}:
        return True
    a, b = one.indication.lower(), other.indication.lower()
    return a in b or b in a


def _requested_peak(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
) -> int | None:
    schedule = screen(program, device, catalog, profile).schedule
    return None if schedule is None else schedule.peak_level


def ways_forward(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
    *,
    tried: Adjustment | None = None,
    confirm_reason: str | None = None,
    programs: Iterable[Program] = (),
) -> list[WayForward]:
    """What would pass instead of `program` as `tried`: the program itself with other
    gentler flags, then up to three gentler `programs` (each below the peak asked for).

    `profile` must hold every comfortable maximum that counts (the journal's too), as the
    run would screen with it.
    """
    tried = tried or Adjustment()
    adjustments = [
        Adjustment(side, at_comfort, at_halved)
        for side, at_comfort, at_halved in itertools.product(
            _sides(program), (False, True), (False, True)
        )
        if Adjustment(side, at_comfort, at_halved) != tried
    ]
    ways = [
        WayForward(program.name, a, v.schedule.peak_level, False, notes)
        for a, v, notes in _passing(program, device, catalog, profile, adjustments, confirm_reason)
        if v.schedule is not None
    ]
    asked = _requested_peak(program, device, catalog, profile)
    others: list[WayForward] = []
    for other in programs:
        if (
            other.name == program.name
            or other.sham  # a trial's control is never offered as a treatment
            or other.actuator != device.actuator
            or not _related(program, other, catalog)
        ):
            continue
        sides = [Adjustment(side) for side in _sides(other)]
        for a, v, notes in _passing(other, device, catalog, profile, sides, confirm_reason)[:1]:
            assert v.schedule is not None
            if asked is None or v.schedule.peak_level < asked:
                others.append(WayForward(other.name, a, v.schedule.peak_level, True, notes))
    others.sort(key=lambda w: (-w.peak_level, w.program))
    return ways + others[:MAX_OTHER_PROGRAMS]
