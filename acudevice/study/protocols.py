"""A study protocol as the centre uses it: validated, and every arm's program screened.

Each arm's program, as its participants' gateways will receive it (renamed after the label),
is screened like any program (acudevice/safety/screening.py) on the shipped band of its kind
with a default health profile, and must come out `ok`: a study program that needs a
confirmation or is refused there would need an override at every session of every
participant. Sham programs get no exemption. The gateway screens again, before every
session, with the participant's own profile.
"""

from __future__ import annotations

from pathlib import Path

from acudevice.errors import InputError, Problem
from acudevice.plan.library import load_device, load_points
from acudevice.plan.protocol import Study, parse_protocol
from acudevice.safety.profile import HealthProfile
from acudevice.safety.screening import Verdict, screen

DEFAULT_DEVICES = {"pressure": "wristband-p1", "vibration": "vibepad-v1"}


def screened(study: Study) -> dict[str, Verdict]:
    """Each arm's verdict, by arm name."""
    catalog = load_points()
    verdicts = {}
    for arm in study.protocol.arms:
        program = study.participant_program(arm.name)
        device = load_device(DEFAULT_DEVICES[program.actuator])
        verdicts[arm.name] = screen(program, device, catalog, HealthProfile())
    return verdicts


def load_study(path: Path) -> Study:
    """parse_protocol, then screening; InputError naming the arm whose program fails it."""
    study = parse_protocol(path)
    problems = []
    for i, (arm, verdict) in enumerate(screened(study).items()):
        if verdict.status != "ok":
            findings = [*verdict.hard, *verdict.soft]
            why = "; ".join(str(f) for f in findings) or "no schedule"
            problems.append(
                Problem(str(path), f"arms[{i}].program",
                        f"{study.programs[arm].name} is {verdict.status} by screening "
                        f"on {verdict.device}: {why}")
            )  # fmt: skip
    if problems:
        raise InputError(problems)
    return study
