"""Builders shared by the plan and safety tests."""

from __future__ import annotations

from typing import Any

from acudevice.plan.program import Program


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
