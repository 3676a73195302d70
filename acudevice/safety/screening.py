"""Screening: program x device x health profile -> ok / needs confirmation / refused.

Hard findings refuse. Soft findings need an explicit confirmation with a reason, which the
verdict records so the journal can show every override later.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from acudevice.plan.devices import (
    FRACTION_TO_PERMILLE,
    KPA_TO_PA,
    PressureDevice,
    VibrationDevice,
    format_level,
)
from acudevice.plan.points import PointCatalog
from acudevice.plan.program import Program
from acudevice.plan.schedule import PhaseKind, Schedule
from acudevice.safety.compiler import compile_program
from acudevice.safety.findings import Finding, PlanRefused
from acudevice.safety.limits import Limits, effective_limits
from acudevice.safety.profile import HealthProfile
from acudevice.safety.rules import (
    HOLD_SOFT_S,
    MIN_GENTLE_RAMP_S,
    REPEATS_SOFT,
    RuleId,
)

Status = Literal["ok", "needs-confirmation", "refused"]


class Confirmation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: RuleId
    message: str
    reason: str


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    program: str
    device: str
    hard: tuple[Finding, ...] = ()
    soft: tuple[Finding, ...] = ()
    confirmed: tuple[Confirmation, ...] = ()
    limits: Limits | None = None
    schedule: Schedule | None = None

    @property
    def status(self) -> Status:
        if self.hard:
            return "refused"
        return "needs-confirmation" if self.soft else "ok"

    @property
    def runnable(self) -> bool:
        return self.status == "ok" and self.schedule is not None

    def __str__(self) -> str:
        """What a person needs, in a few lines: the status, the cap and what set it, each
        finding with its rule, and what they can do. (The model's own repr, with the whole
        schedule, runs to kilobytes.)"""
        lines = [f"{self.status}: {self.program} on {self.device}"]
        if self.limits is not None:
            binding = self.limits.binding
            cap = format_level(self.limits.cap_level, self.limits.actuator)
            lines.append(f"  effective cap {cap} (set by {binding.rule}: {binding.why})")
        lines += [f"  refused {finding}" for finding in self.hard]
        lines += [f"  needs confirmation {finding}" for finding in self.soft]
        lines += [
            f"  confirmed [{c.rule}] {c.message} — reason: {c.reason}" for c in self.confirmed
        ]
        lines.append(f"  {_WHAT_NEXT[self.status]}")
        return "\n".join(lines)


_WHAT_NEXT: dict[Status, str] = {
    "ok": "It may run as it is.",
    "needs-confirmation": (
        "To go ahead, run it gentler or confirm: a limit on how strong it is clears when the "
        "program is scaled under the level the finding names (fit_under in Python, "
        "--at-comfort or --at-halved-cap on the command line); or confirm the soft limits "
        'with a reason, which is recorded: Session(..., confirm_reason="REASON") or '
        'screen(..., confirm_reason="REASON") in Python, --confirm "REASON" on the command '
        "line. Or choose a gentler program."
    ),
    "refused": (
        "It cannot run as it is: change what each refusal names (the program, the device, "
        "the profile or the side: --side left|right on the command line); a confirmation "
        "cannot lift a hard limit."
    ),
}


def _site_findings(
    program: Program, catalog: PointCatalog, profile: HealthProfile
) -> list[Finding]:
    found: list[Finding] = []
    for i, site in enumerate(program.sites):
        point = catalog.resolve(site.point)
        if profile.pregnant and point.pregnancy_avoid:
            found.append(
                Finding(
                    rule=RuleId.PREGNANCY_POINT,
                    where=f"sites[{i}]",
                    message=f"{point.label} is avoided in pregnancy",
                )
            )
        if point.limb == "trunk":
            continue
        for side in site.sides:
            conditions = profile.conditions_on(f"{side}_{point.limb}")
            if conditions:
                names = ", ".join(str(c) for c in conditions)
                other = "right" if side == "left" else "left"
                found.append(
                    Finding(
                        rule=RuleId.LIMB_CONDITION,
                        where=f"sites[{i}]",
                        message=f"{side} {point.limb} has {names}: no band at {point.code} on that side"
                        + (f"; use the {other} side only" if site.side == "both" else ""),
                    )
                )
    return found


def comfort_level(program: Program, catalog: PointCatalog, profile: HealthProfile) -> int | None:
    """The lowest comfortable maximum the profile gives for the program's points, in Pa or
    permille; None when it gives none."""
    table, scale = (
        (profile.comfort_max_kpa, KPA_TO_PA)
        if program.actuator == "pressure"
        else (profile.comfort_max_intensity, FRACTION_TO_PERMILLE)
    )
    levels = []
    for site in program.sites:
        point = catalog.resolve(site.point)
        for key in (point.code, *point.aliases):
            if key in table:
                levels.append(round(table[key] * scale))
                break
    return min(levels) if levels else None


def _soft_findings(program: Program, schedule: Schedule, limits: Limits) -> list[Finding]:
    found: list[Finding] = []
    if program.repeats > REPEATS_SOFT:
        found.append(
            Finding(
                rule=RuleId.REPEATS_SOFT,
                where="repeats",
                message=f"{program.repeats} repeats; the usual is 3 to {REPEATS_SOFT}",
            )
        )
    for i, phase in enumerate(program.phases):
        where = program.phase_label(i)
        if phase.kind is PhaseKind.HOLD and phase.duration_s > HOLD_SOFT_S:
            found.append(
                Finding(
                    rule=RuleId.HOLD_SOFT,
                    where=where,
                    message=f"hold of {phase.duration_s:g} s; the usual is at most {HOLD_SOFT_S:g} s",
                )
            )
        moves = [s for s in schedule.segments if s.phase_index == i and s.from_level != s.to_level]
        if (
            phase.kind in (PhaseKind.RAMP, PhaseKind.RELEASE)
            and moves
            and phase.duration_s < MIN_GENTLE_RAMP_S
        ):
            found.append(
                Finding(
                    rule=RuleId.GENTLE_RAMP,
                    where=where,
                    message=f"{phase.kind} over {phase.duration_s:g} s; under "
                    f"{MIN_GENTLE_RAMP_S:g} s feels abrupt",
                )
            )
    if limits.comfort_level is not None and schedule.peak_level > limits.comfort_level:
        peak = format_level(schedule.peak_level, limits.actuator)
        comfort = format_level(limits.comfort_level, limits.actuator)
        found.append(
            Finding(
                rule=RuleId.COMFORT_MAX,
                message=f"peak {peak} is above your comfortable maximum {comfort}",
                clears_at=limits.comfort_level,
            )
        )
    return found


def _user_cap(device: PressureDevice | VibrationDevice, profile: HealthProfile) -> int | None:
    if isinstance(device, PressureDevice) and profile.cap_kpa is not None:
        return round(profile.cap_kpa * KPA_TO_PA)
    if isinstance(device, VibrationDevice) and profile.cap_intensity is not None:
        return round(profile.cap_intensity * FRACTION_TO_PERMILLE)
    return None


def envelope(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile,
) -> tuple[Limits, Limits | None]:
    """The limits the program meets for this person: the full envelope (comfort maxima
    included), and the one whose cap a bleeding risk halves (None without a risk)."""
    user_cap = _user_cap(device, profile)
    points = [catalog.resolve(s.point) for s in program.sites]
    sensitive = ", ".join(p.code for p in points if p.sensitivity == "sensitive") or None
    comfort = comfort_level(program, catalog, profile)
    full = effective_limits(
        device, user_cap_level=user_cap, sensitive_site=sensitive, comfort_level=comfort
    )
    risk = ", ".join(profile.bleeding_risk)
    if not risk:
        return full, None
    halved = effective_limits(
        device,
        user_cap_level=user_cap,
        sensitive_site=sensitive,
        bleeding_risk=risk,
        comfort_level=comfort,
    )
    return full, halved


def screen(
    program: Program,
    device: PressureDevice | VibrationDevice,
    catalog: PointCatalog,
    profile: HealthProfile | None = None,
    *,
    confirm_reason: str | None = None,
) -> Verdict:
    """Check everything; `confirm_reason` confirms every soft finding and is recorded."""
    profile = profile or HealthProfile()
    hard: list[Finding] = []
    base = Verdict(program=program.name, device=device.name)

    if program.actuator != device.actuator:
        hard.append(
            Finding(
                rule=RuleId.ACTUATOR_MISMATCH,
                message=f"a {program.actuator} program cannot run on {device.name}, "
                f"a {device.actuator} device",
            )
        )
        return base.model_copy(update={"hard": tuple(hard)})

    user_cap = _user_cap(device, profile)
    if user_cap is not None and user_cap > device.default_user_cap_level:
        hard.append(
            Finding(
                rule=RuleId.USER_CAP,
                where="cap",
                message=f"a personal cap may only lower the default "
                f"({format_level(device.default_user_cap_level, device.actuator)} on "
                f"{device.name}), not raise it",
            )
        )
    hard += _site_findings(program, catalog, profile)

    full, halved = envelope(program, device, catalog, profile)
    try:
        schedule = compile_program(program, full, device)
    except PlanRefused as refused:
        hard += refused.findings
        return base.model_copy(update={"hard": tuple(hard), "limits": full})
    if hard:
        return base.model_copy(update={"hard": tuple(hard), "limits": full, "schedule": schedule})

    limits = full
    soft = _soft_findings(program, schedule, full)
    if halved is not None:
        if schedule.peak_level > halved.cap_level:
            soft.append(
                Finding(
                    rule=RuleId.BLEEDING_RISK,
                    message=f"{', '.join(profile.bleeding_risk)}: the cap is halved to "
                    f"{format_level(halved.cap_level, device.actuator)} unless you confirm",
                    clears_at=halved.cap_level,
                )
            )
        if confirm_reason is None or schedule.peak_level <= halved.cap_level:
            limits = halved
            schedule = (
                schedule.model_copy(update={"cap_level": halved.cap_level})
                if schedule.peak_level <= halved.cap_level
                else schedule
            )

    if confirm_reason is not None and confirm_reason.strip() and soft:
        confirmed = tuple(
            Confirmation(rule=f.rule, message=str(f), reason=confirm_reason.strip()) for f in soft
        )
        return base.model_copy(
            update={"confirmed": confirmed, "limits": limits, "schedule": schedule}
        )
    return base.model_copy(update={"soft": tuple(soft), "limits": limits, "schedule": schedule})
