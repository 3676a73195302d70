"""Builders shared by the plan and safety tests."""

from __future__ import annotations

from typing import Any

from acudevice.plan.program import Program
from acudevice.plan.schedule import PhaseKind, Schedule, Segment


def program(**overrides: Any) -> Program:
    """A valid nausea-relief-shaped program, with fields replaced as a test needs."""
    data: dict[str, Any] = {
        "name": "test-program",
        "title": "Test",
        "description": "A test program.",
        "indication": "nausea",
        "actuator": "pressure",
        "repeats": 4,
        "sites": [{"point": "PC6", "side": "both"}],
        "phases": [
            {"kind": "ramp", "duration_s": 30, "target_kpa": 12},
            {"kind": "hold", "duration_s": 60},
            {"kind": "release", "duration_s": 30},
        ],
    }
    data.update(overrides)
    return Program.model_validate(data)


def hand_made_ramp(*, to_level: int, duration_ms: int, cap_level: int) -> Schedule:
    """One pressure ramp from 0, built by hand (not by the compiler), for host-side refusals."""
    segment = Segment(
        start_ms=0,
        duration_ms=duration_ms,
        from_level=0,
        to_level=to_level,
        phase=PhaseKind.RAMP,
        phase_index=0,
        repeat=0,
    )
    return Schedule(
        program="hand-made", actuator="pressure", cap_level=cap_level, segments=(segment,)
    )
