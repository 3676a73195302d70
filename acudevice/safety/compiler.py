"""Program + Limits + DeviceModel -> Schedule: pure, deterministic, refusing not clamping.

Every hard rule the schedule itself can break is checked here, so no caller can obtain a
Schedule that exceeds the envelope; all broken rules are reported together.
"""

from __future__ import annotations

from acudevice.plan.devices import (
    FRACTION_TO_PERMILLE,
    KPA_TO_PA,
    PressureDevice,
    VibrationDevice,
    format_level,
)
from acudevice.plan.program import Phase, Program
from acudevice.plan.schedule import PhaseKind, Schedule, Segment, Shape
from acudevice.safety.findings import Finding, PlanRefused
from acudevice.safety.limits import Limits
from acudevice.safety.rules import HOLD_HARD_S, REPEATS_HARD, RuleId

# Rounding a float slope can exceed a limit by less than one level unit per second.
_RATE_SLACK = 1e-9


def _target_level(phase: Phase, limits: Limits) -> int | None:
    if phase.target_kpa is not None:
        return round(phase.target_kpa * KPA_TO_PA)
    if phase.target_intensity is not None:
        return round(phase.target_intensity * FRACTION_TO_PERMILLE)
    if phase.target_fraction is not None:
        return round(phase.target_fraction * limits.reference_level)
    return None


def compile_program(
    program: Program, limits: Limits, device: PressureDevice | VibrationDevice
) -> Schedule:
    refusals: list[Finding] = []
    if program.actuator != device.actuator or limits.actuator != device.actuator:
        raise PlanRefused(
            [
                Finding(
                    rule=RuleId.ACTUATOR_MISMATCH,
                    message=f"a {program.actuator} program cannot run on {device.name} ({device.actuator})",
                )
            ]
        )
    if program.repeats > REPEATS_HARD:
        refusals.append(
            Finding(
                rule=RuleId.REPEATS_HARD,
                where="repeats",
                message=f"{program.repeats} repeats; at most {REPEATS_HARD}",
            )
        )
    cap = limits.cap_level
    seen: set[tuple[RuleId, int]] = set()

    def refuse(rule: RuleId, index: int, message: str) -> None:
        if (rule, index) not in seen:  # once per phase, not once per repeat
            seen.add((rule, index))
            refusals.append(Finding(rule=rule, where=program.phase_label(index), message=message))

    segments: list[Segment] = []
    t_ms = 0
    level = 0
    run_started_ms: int | None = None
    for repeat in range(program.repeats):
        if repeat > 0 and program.rest_between_s > 0:
            duration = round(program.rest_between_s * 1000)
            segments.append(
                Segment(
                    start_ms=t_ms,
                    duration_ms=duration,
                    from_level=level,
                    to_level=level,
                    phase=PhaseKind.REST,
                    phase_index=len(program.phases),
                    repeat=repeat - 1,
                )
            )
            t_ms += duration
        for index, phase in enumerate(program.phases):
            duration = round(phase.duration_s * 1000)
            target = _target_level(phase, limits)
            if phase.kind is PhaseKind.RAMP:
                assert target is not None  # the Phase model requires it
                if target < level:
                    refuse(
                        RuleId.PHASE_DIRECTION,
                        index,
                        f"ramps up to {format_level(target, limits.actuator)} but starts at {format_level(level, limits.actuator)}",
                    )
            elif phase.kind is PhaseKind.RELEASE:
                target = 0 if target is None else target
                if target > level:
                    refuse(
                        RuleId.PHASE_DIRECTION,
                        index,
                        f"releases to {format_level(target, limits.actuator)} but starts at {format_level(level, limits.actuator)}",
                    )
            elif phase.kind is PhaseKind.REST:
                target = level
                if limits.vent_level is not None and level >= limits.vent_level:
                    refuse(
                        RuleId.PHASE_DIRECTION,
                        index,
                        f"rest starts at {format_level(level, limits.actuator)}; release first",
                    )
            else:
                target = level
                if phase.duration_s > HOLD_HARD_S and level > 0:
                    refuse(
                        RuleId.HOLD_HARD,
                        index,
                        f"hold of {phase.duration_s:g} s; at most {HOLD_HARD_S:g} s",
                    )
            if target > cap and phase.kind in (PhaseKind.RAMP, PhaseKind.RELEASE):
                binding = limits.binding
                refuse(
                    RuleId.EFFECTIVE_CAP,
                    index,
                    f"target {format_level(target, limits.actuator)} exceeds the cap {format_level(cap, limits.actuator)} "
                    f"(set by {binding.rule}: {binding.why})",
                )
            segment = Segment(
                start_ms=t_ms,
                duration_ms=duration,
                from_level=level,
                to_level=target,
                shape=Shape.LINEAR,
                phase=phase.kind,
                phase_index=index,
                repeat=repeat,
            )
            if segment.slope_per_s > limits.max_ramp_level_per_s * (1 + _RATE_SLACK):
                refuse(
                    RuleId.DEVICE_RAMP_RATE,
                    index,
                    f"changes by {format_level(round(segment.slope_per_s), limits.actuator)}/s; "
                    f"{device.name} can follow at most {format_level(round(limits.max_ramp_level_per_s), limits.actuator)}/s"
                    f" — lengthen the phase",
                )
            segments.append(segment)
            if limits.max_continuous_ms is not None:
                if target > 0 or level > 0:
                    run_started_ms = t_ms if run_started_ms is None else run_started_ms
                    if t_ms + duration - run_started_ms > limits.max_continuous_ms:
                        refuse(
                            RuleId.CONTINUOUS_RUN,
                            index,
                            f"runs without a pause for more than "
                            f"{limits.max_continuous_ms / 1000:g} s, the limit of {device.name}",
                        )
                if target == 0:
                    run_started_ms = None
            t_ms += duration
            level = target
        if limits.vent_level is not None and level >= limits.vent_level:
            refuse(
                RuleId.VENT_BETWEEN_REPEATS,
                len(program.phases) - 1,
                f"a repeat ends at {format_level(level, limits.actuator)}; it must end under "
                f"{format_level(limits.vent_level, limits.actuator)} (add a release phase)",
            )
    if refusals:
        raise PlanRefused(refusals)
    return Schedule(
        program=program.name,
        actuator=program.actuator,
        cap_level=cap,
        frequency_hz=program.frequency_hz,
        segments=tuple(segments),
    )
