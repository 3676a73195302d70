"""`acudevice check`: the safety verdict for a program, this user and this device."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from acudevice.cli.common import (
    CAP_KPA,
    build_profile,
    default_device,
    out,
    reports_errors,
    styled,
)
from acudevice.cli.gentler import (
    AtComfortOption,
    AtHalvedCapOption,
    SideOption,
    adjusted,
    offers,
    print_ways,
    ways_json,
)
from acudevice.plan.devices import format_level
from acudevice.plan.library import ProgramLibrary
from acudevice.safety.findings import Finding
from acudevice.safety.fitting import Adjustment
from acudevice.safety.forward import WayForward
from acudevice.safety.screening import Verdict
from acudevice.session.verdict import verdict_for
from acudevice.store import Journal, check_participant

EXIT_CODES = {"ok": 0, "needs-confirmation": 3, "refused": 4}


def print_verdict(
    verdict: Verdict,
    actuator: str,
    *,
    ways: Sequence[WayForward] = (),
    adjusted_as: Sequence[str] = (),
    command: str = "run",
) -> None:
    """The verdict, then every way forward that passes (`ways`), confirming last.

    `adjusted_as`: what the gentler flags changed, said for a person."""
    colour = {"ok": "green", "needs-confirmation": "yellow", "refused": "red"}[verdict.status]
    out.print(
        styled(
            (verdict.status.upper(), f"bold {colour}"), f": {verdict.program} on {verdict.device}"
        )
    )
    if verdict.limits is not None:
        binding = verdict.limits.binding
        out.print(
            f"  effective cap {format_level(verdict.limits.cap_level, actuator)} "
            f"(set by {binding.rule}: {binding.why})"
        )
    if adjusted_as:
        out.print(f"  adjusted: {'; '.join(adjusted_as)}", soft_wrap=True)
    for finding in verdict.hard:
        out.print(styled("  ", ("refused", "red"), f" {finding}"), soft_wrap=True)
    for finding in verdict.soft:
        out.print(styled("  ", ("needs confirmation", "yellow"), f" {finding}"), soft_wrap=True)
    for confirmation in verdict.confirmed:
        out.print(
            f"  confirmed {confirmation.message} — reason: {confirmation.reason}",
            soft_wrap=True,
        )
    print_ways(verdict, ways, actuator, command)


def _finding_json(finding: Finding, actuator: str) -> dict[str, object]:
    said: dict[str, object] = {
        "rule": str(finding.rule),
        "where": finding.where,
        "message": finding.message,
    }
    if finding.clears_at is not None:
        unit = "kpa" if actuator == "pressure" else "intensity"
        said[f"clears_at_{unit}"] = finding.clears_at / 1000
    return said


def verdict_json(
    verdict: Verdict,
    actuator: str = "pressure",
    *,
    ways: Sequence[WayForward] = (),
    adjusted_as: Sequence[str] = (),
) -> str:
    return json.dumps(
        {
            "program": verdict.program,
            "device": verdict.device,
            "status": verdict.status,
            "cap_level": verdict.limits.cap_level if verdict.limits else None,
            "adjusted": list(adjusted_as),
            "hard": [_finding_json(f, actuator) for f in verdict.hard],
            "soft": [_finding_json(f, actuator) for f in verdict.soft],
            "confirmed": [c.model_dump(mode="json") for c in verdict.confirmed],
            "ways_forward": ways_json(ways, actuator),
        }
    )


@reports_errors
def check(
    program_name: Annotated[
        str, typer.Argument(metavar="PROGRAM", help="program name or .toml file")
    ],
    pregnant: Annotated[bool, typer.Option("--pregnant", help="screen for pregnancy")] = False,
    cap_kpa: Annotated[
        float | None, typer.Option("--cap-kpa", help=f"your personal cap, {CAP_KPA} (only lowers)")
    ] = None,
    profile_file: Annotated[
        Path | None, typer.Option("--profile", help="health profile TOML")
    ] = None,
    device_model: Annotated[
        str | None, typer.Option("--device-model", help="device model name")
    ] = None,
    confirm: Annotated[
        str | None,
        typer.Option("--confirm", metavar="REASON", help="confirm soft limits, with a reason"),
    ] = None,
    participant: Annotated[
        str | None,
        typer.Option("--participant", metavar="ID", help="whose remembered comfort maxima count"),
    ] = None,
    side: SideOption = None,
    at_comfort: AtComfortOption = False,
    at_halved_cap: AtHalvedCapOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable verdict")] = False,
) -> None:
    """Safety verdict: exit 0 ok, 3 needs confirmation, 4 refused, 2 bad input.

    Takes `run`'s gentler flags (--side, --at-comfort, --at-halved-cap) and predicts it."""
    if participant is not None:
        check_participant(participant, "--participant")
    library = ProgramLibrary()
    program = library.get(program_name)
    device = default_device(program, device_model)
    profile = build_profile(profile_file, pregnant=pregnant, cap_kpa=cap_kpa)
    adjustment = Adjustment(side, at_comfort, at_halved_cap)
    with Journal() as journal:  # remembered comfort maxima count here as in `run`
        fitted = adjusted(
            program, device, library, profile, journal, adjustment, participant=participant
        )
        verdict = verdict_for(
            fitted.program,
            device,
            library.catalog,
            profile,
            journal,
            confirm_reason=confirm,
            participant=participant,
        )
        ways = (
            []
            if verdict.status == "ok"
            else offers(
                program,
                device,
                library,
                profile,
                journal,
                adjustment,
                confirm,
                participant=participant,
            )
        )
    if as_json:
        typer.echo(verdict_json(verdict, program.actuator, ways=ways, adjusted_as=fitted.notes))
    else:
        print_verdict(
            verdict, program.actuator, ways=ways, adjusted_as=fitted.notes, command="check"
        )
    raise typer.Exit(EXIT_CODES[verdict.status])
