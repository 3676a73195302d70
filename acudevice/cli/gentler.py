"""The gentler flags `check` and `run` share, and the ways forward a verdict offers.

`check` and `run` build the program they screen here, the same way, so a check predicts
the run: `--side`, `--at-comfort` and `--at-halved-cap` make a new, weaker program that is
screened again in full (acudevice.safety.fitting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from acudevice.cli.common import out
from acudevice.errors import InputError
from acudevice.plan.devices import PressureDevice, VibrationDevice, format_level
from acudevice.plan.library import ProgramLibrary, parse_program
from acudevice.plan.program import Program
from acudevice.safety.fitting import Adjusted, Adjustment, OneSide, adjust
from acudevice.safety.forward import WayForward, ways_forward
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict
from acudevice.session.verdict import remembered_profile
from acudevice.store import Journal

SideOption = Annotated[
    OneSide | None,
    typer.Option(
        "--side",
        help="wear the band on this side only (for a caution on the other limb)",
    ),
]
AtComfortOption = Annotated[
    bool,
    typer.Option(
        "--at-comfort",
        help="run at your comfortable level: the program scaled so its peak is at most your "
        "remembered comfortable maximum for the point",
    ),
]
AtHalvedCapOption = Annotated[
    bool,
    typer.Option(
        "--at-halved-cap",
        help="with a bleeding risk: the program scaled under the halved cap",
    ),
]


def adjusted(
    program: Program,
    device: PressureDevice | VibrationDevice,
    library: ProgramLibrary,
    profile: HealthProfile,
    journal: Journal,
    adjustment: Adjustment,
    *,
    participant: str | None = None,
) -> Adjusted:
    """The program as the flags ask, with the comfort maxima the run will screen with."""
    merged = remembered_profile(profile, journal, device.actuator, participant=participant)
    return adjust(program, device, library.catalog, merged, adjustment)


def _shipped(library: ProgramLibrary) -> list[Program]:
    """The shipped programs that load (a broken one is not worth failing a suggestion)."""
    programs = []
    for origin, path in library.files():
        if origin != "shipped":
            continue
        try:
            programs.append(parse_program(path, library.catalog))
        except InputError:
            continue
    return programs


def offers(
    program: Program,
    device: PressureDevice | VibrationDevice,
    library: ProgramLibrary,
    profile: HealthProfile,
    journal: Journal,
    adjustment: Adjustment,
    confirm_reason: str | None,
    *,
    participant: str | None = None,
) -> list[WayForward]:
    """Every gentler way that passes screening for this person, instead of `program`."""
    merged = remembered_profile(profile, journal, device.actuator, participant=participant)
    return ways_forward(
        program,
        device,
        library.catalog,
        merged,
        tried=adjustment,
        confirm_reason=confirm_reason,
        programs=_shipped(library),
    )


def describe_way(way: WayForward, actuator: str, command: str) -> str:
    peak = format_level(way.peak_level, actuator)
    flags = " ".join(way.adjustment.flags)
    notes = f" — {'; '.join(way.notes)}" if way.notes else ""
    if way.other_program:
        words = " ".join(("acudevice", command, way.program, *way.adjustment.flags))
        return f"{words}: a gentler program, peak {peak}{notes}"
    return f"with {flags}: peak {peak}{notes}"


def print_ways(verdict: Verdict, ways: Sequence[WayForward], actuator: str, command: str) -> None:
    """The ways forward under a verdict that is not ok; confirming last, as the less safe."""
    if verdict.status == "ok":
        return
    if ways:
        out.print("  Ways forward that pass screening:")
        for way in ways:
            out.print(f"    {describe_way(way, actuator, command)}", soft_wrap=True)
    elif verdict.status == "refused":
        out.print("  No gentler flag or shipped program passes for you as things are.")
    if verdict.soft and not verdict.hard:
        full = (
            f" (runs at the full peak {format_level(verdict.schedule.peak_level, actuator)})"
            if verdict.schedule is not None
            else ""
        )
        out.print(
            f'  Or confirm with a reason, which is recorded: --confirm "REASON"{full}.',
            soft_wrap=True,
        )


def ways_json(ways: Sequence[WayForward], actuator: str) -> list[dict[str, object]]:
    unit = "kpa" if actuator == "pressure" else "intensity"
    return [
        {
            "program": way.program,
            "flags": list(way.adjustment.flags),
            f"peak_{unit}": way.peak_level / 1000,
            "other_program": way.other_program,
            "notes": list(way.notes),
        }
        for way in ways
    ]
