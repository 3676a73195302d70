"""A program made gentler for one person: scaled under a level, or put on one side.

Nothing here loosens a limit. An adjusted program is a new program that the caller screens
again in full, like any other; it is only ever weaker than the one it came from (every
absolute target scaled by one factor of at most 1) or worn on fewer sides. It is never a
silent clamp either: it is what the person asked for by name (`--at-comfort`,
`--at-halved-cap`, `--side`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from acudevice.errors import InputError, Problem
from acudevice.plan.devices import (
    FRACTION_TO_PERMILLE,
    KPA_TO_PA,
    PressureDevice,
    VibrationDevice,
    format_level,
)
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Phase, Program
from acudevice.safety.compiler import compile_program
from acudevice.safety.findings import PlanRefused
from acudevice.safety.limits import Limits
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import envelope

OneSide = Literal["left", "right"]
_EPSILON = 1e-9
"""A scaled level is rounded down to a whole Pa or permille; this keeps 12000 x 0.7 from
becoming 8399 when the float product is 8399.999999999999."""


@dataclass(frozen=True)
class Adjustment:
    """What a person asked for on top of the program (each a command-line flag)."""

    side: OneSide | None = None
    at_comfort: bool = False
    at_halved_cap: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        """As typed: ("--side", "right", "--at-comfort")."""
        words: list[str] = []
        if self.side is not None:
            words += ["--side", self.side]
        if self.at_comfort:
            words.append("--at-comfort")
        if self.at_halved_cap:
            words.append("--at-halved-cap")
        return tuple(words)

    def __bool__(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class Adjusted:
    program: Program
    fitted_under: int | None = None
    """The level the program was asked to fit under (Pa or permille), if any."""
    factor: float = 1.0
    """What each absolute target was multiplied by (1: unchanged)."""
    notes: tuple[str, ...] = ()
    """What changed, for a person: "right side only", "scaled to 70 % under your comfortable
    maximum (8.4 kPa)"."""


def _scale(value: float | None, unit: int, factor: float) -> float | None:
    if value is None:
        return None
    return math.floor(round(value * unit) * factor + _EPSILON) / unit


def scaled(program: Program, factor: float) -> Program:
    """Every `target_kpa` and `target_intensity` times `factor` (rounded down to a whole Pa
    or permille); `target_fraction` is left as it is (it follows the comfortable maximum)."""
    if not 0 < factor <= 1:
        raise ValueError(f"a program is only scaled down: factor {factor} is not in (0, 1]")
    if factor == 1:
        return program
    phases = tuple(
        phase.model_copy(
            update={
                "target_kpa": _scale(phase.target_kpa, KPA_TO_PA, factor),
                "target_intensity": _scale(phase.target_intensity, FRACTION_TO_PERMILLE, factor),
            }
        )
        for phase in program.phases
    )
    return program.model_copy(update={"phases": phases})


def _absolute_level(phase: Phase) -> int | None:
    if phase.target_kpa is not None:
        return round(phase.target_kpa * KPA_TO_PA)
    if phase.target_intensity is not None:
        return round(phase.target_intensity * FRACTION_TO_PERMILLE)
    return None


def fit_under(program: Program, level: int) -> tuple[Program, float]:
    """The program scaled so that no absolute target is above `level`, and the factor used
    (1 when it already fits)."""
    if level <= 0:
        raise ValueError(f"cannot fit a program under {level}")
    targets = [t for t in map(_absolute_level, program.phases) if t is not None]
    peak = max(targets, default=0)
    if peak <= level:
        return program, 1.0
    factor = level / peak
    return scaled(program, factor), factor


def on_one_side(program: Program, side: OneSide) -> Program:
    """Every "both" site worn on `side` only; a site named for the other side is refused."""
    other = "left" if side == "right" else "right"
    for i, site in enumerate(program.sites):
        if site.side == other:
            raise InputError(
                [
                    Problem(
                        "--side",
                        "",
                        f"{program.name}: sites[{i}] ({site.point}) is for the {other} side "
                        f"only; it cannot move to the {side}",
                    )
                ]
            )
    sites = tuple(site.model_copy(update={"side": side}) for site in program.sites)
    return program.model_copy(update={"sites": sites})


def adjust(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
    adjustment: Adjustment,
) -> Adjusted:
    """The program as `adjustment` asks, to screen again; InputError (naming the flag) when
    a flag cannot apply: no comfortable maximum known, no bleeding risk to halve the cap."""
    if not adjustment:
        return Adjusted(program)
    notes: list[str] = []
    if adjustment.side is not None:
        program = on_one_side(program, adjustment.side)
        notes.append(f"{adjustment.side} side only")
    full, halved = envelope(program, device, catalog, profile)
    levels: list[tuple[int, str, str]] = []
    if adjustment.at_comfort:
        if full.comfort_level is None:
            points = ", ".join(catalog.resolve(s.point).code for s in program.sites)
            raise InputError(
                [
                    Problem(
                        "--at-comfort",
                        "",
                        f"no comfortable maximum is known for {points}: set one with "
                        "`acudevice comfort set` or in your profile, or run without it",
                    )
                ]
            )
        levels.append((full.comfort_level, "your comfortable maximum", "--at-comfort"))
    if adjustment.at_halved_cap:
        if halved is None:
            raise InputError(
                [
                    Problem(
                        "--at-halved-cap",
                        "",
                        "your profile names no bleeding risk (blood_thinners, "
                        "bleeding_disorder, fragile_skin), so no cap is halved",
                    )
                ]
            )
        levels.append((halved.cap_level, "the halved cap", "--at-halved-cap"))
    fitted, factor, level = program, 1.0, None
    if levels:
        level, what, flag = min(levels)
        fitted, factor = fit_under(program, level)
        _check_fits(fitted, full, device, level, what, flag)
        said = format_level(level, program.actuator)
        if factor < 1:
            notes.append(f"scaled to {round(factor * 100)} % under {what} ({said})")
        else:
            notes.append(f"already within {what} ({said})")
    title = f"{program.title} — {'; '.join(notes)}"
    fitted = fitted.model_copy(update={"title": title})
    return Adjusted(fitted, fitted_under=level, factor=factor, notes=tuple(notes))


def _check_fits(
    program: Program,
    limits: Limits,
    device: PressureDevice | VibrationDevice,
    level: int,
    what: str,
    flag: str,
) -> None:
    """Targets given as fractions are not scaled: say so when they alone stay above."""
    try:
        peak = compile_program(program, limits, device).peak_level
    except PlanRefused:
        return  # screening says what is wrong, in full
    if peak > level:
        raise InputError(
            [
                Problem(
                    flag,
                    "",
                    f"{program.name} cannot be fitted under {format_level(level, program.actuator)}"
                    f" ({what}): its target_fraction phases reach "
                    f"{format_level(peak, program.actuator)}, and scaling leaves fractions as "
                    "they are",
                )
            ]
        )
