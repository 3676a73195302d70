"""`acudevice programs …`: list, show, validate, plot, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from acudevice.cli.common import (
    CAP_KPA,
    EXIT_BAD_INPUT,
    build_profile,
    default_device,
    err,
    out,
    reports_errors,
    styled,
)
from acudevice.errors import InputError, Problem
from acudevice.plan.devices import format_level
from acudevice.plan.library import ProgramLibrary, parse_program
from acudevice.plan.program import Program
from acudevice.plan.schedule import Schedule
from acudevice.plots import Line, plot_schedule
from acudevice.safety.findings import PlanRefused
from acudevice.safety.limits import Limits
from acudevice.safety.profile import HealthProfile
from acudevice.safety.rules import ABSOLUTE_CEILING_KPA, BLEEDING_RISK_FACTOR
from acudevice.safety.screening import screen

app = typer.Typer(
    help="Session programs: list, inspect, validate and plot them.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


@app.command("list")
@reports_errors
def list_programs() -> None:
    """Every program, shipped and your own."""
    library = ProgramLibrary()
    table = Table(title="Programs")
    table.add_column("name", no_wrap=True)
    for col in ("title", "points", "actuator", "length", "from"):
        table.add_column(col)
    for name, (origin, program) in sorted(library.load_all().items()):
        device = default_device(program, None)
        verdict = screen(program, device, library.catalog)
        length = _minutes(verdict.schedule.total_s) if verdict.schedule else "-"
        points = ", ".join(
            f"{library.catalog.resolve(s.point).code} {s.side}" for s in program.sites
        )
        table.add_row(name, program.title, points, program.actuator, length, origin)
    out.print(table)
    out.print(f"Your own programs go in {library.user_dir}")


@app.command("show")
@reports_errors
def show(name: Annotated[str, typer.Argument(help="program name or .toml file")]) -> None:
    """Phases, points with placement guidance, total time and cautions."""
    library = ProgramLibrary()
    program = library.get(name)
    device = default_device(program, None)
    verdict = screen(program, device, library.catalog)
    out.print(styled((program.title, "bold"), f"  ({program.name})"))
    out.print(program.description)
    out.print(
        f"Indication: {program.indication}   Actuator: {program.actuator}   Repeats: {program.repeats}"
        + (
            f"   Rest between repeats: {program.rest_between_s:g} s"
            if program.rest_between_s
            else ""
        )
    )
    phases = Table(title="Phases (one repeat)")
    for col in ("#", "kind", "duration", "target"):
        phases.add_column(col)
    for i, phase in enumerate(program.phases):
        if phase.target_kpa is not None:
            target = f"{phase.target_kpa:g} kPa"
        elif phase.target_fraction is not None:
            target = f"{phase.target_fraction:.0%} of your comfortable maximum"
        elif phase.target_intensity is not None:
            target = f"intensity {phase.target_intensity:g}"
        else:
            target = "0" if phase.kind == "release" else "keeps level"
        phases.add_row(str(i + 1), str(phase.kind), f"{phase.duration_s:g} s", target)
    out.print(phases)
    for site in program.sites:
        point = library.catalog.resolve(site.point)
        out.print(styled((point.label, "bold"), f" — {site.side} side(s), {point.region}"))
        out.print(f"  Placement: {point.location}")
        for caution in point.cautions:
            out.print(styled("  ", ("Caution:", "yellow"), f" {caution}"))
    if verdict.schedule:
        out.print(
            f"Total time: {_minutes(verdict.schedule.total_s)}; peak "
            f"{format_level(verdict.schedule.peak_level, program.actuator)} on {device.name} "
            f"(cap {format_level(verdict.limits.cap_level, program.actuator) if verdict.limits else '-'})"
        )
    out.print("It should never hurt: if it does, press stop (or 's' for too strong) at once.")


@app.command("validate")
@reports_errors
def validate(files: Annotated[list[Path], typer.Argument(help="program files to check")]) -> None:
    """Check program files; exit 0 when all are valid, 2 with every problem listed."""
    library = ProgramLibrary()
    problems: list[Problem] = []
    for path in files:
        try:
            program = parse_program(path, library.catalog)
        except InputError as exc:
            problems += exc.problems
            continue
        verdict = screen(program, default_device(program, None), library.catalog)
        problems += [
            Problem(str(path), f.where or "", f"{f.message} [{f.rule}]") for f in verdict.hard
        ]
        if not any(p.source == str(path) for p in problems):
            out.print(f"{path}: valid ({program.name})")
    if problems:
        for problem in problems:
            err.print(str(problem), soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT)


def reference_lines(
    limits: Limits, schedule: Schedule, profile: HealthProfile | None = None
) -> list[Line]:
    """The cap, the absolute ceiling, and soft limits that apply to this profile only."""
    lines = [
        Line(
            limits.cap_level,
            f"cap {format_level(limits.cap_level, schedule.actuator)} ({limits.binding.why})",
            "hard",
        )
    ]
    if schedule.actuator == "pressure":
        lines.append(Line(round(ABSOLUTE_CEILING_KPA * 1000), "absolute ceiling 40 kPa", "ceiling"))
        if limits.vent_level is not None:
            lines.append(Line(limits.vent_level, "vented between repeats", "info"))
    if profile is None or not profile.bleeding_risk:
        # With a bleeding risk in the profile the cap line above is already the halved one.
        soft = round(limits.cap_level * BLEEDING_RISK_FACTOR)
        lines.append(
            Line(
                soft,
                f"{format_level(soft, schedule.actuator)}: the cap if a profile lists blood "
                "thinners, a bleeding disorder or fragile skin",
                "soft",
            )
        )
    if limits.comfort_level is not None:
        lines.append(Line(limits.comfort_level, "soft: your comfortable maximum", "soft"))
    return lines


@app.command("plot")
@reports_errors
def plot(
    name: Annotated[str, typer.Argument(help="program name or .toml file")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG or SVG file to write")],
    device_model: Annotated[str | None, typer.Option("--device-model", help="device model")] = None,
    cap_kpa: Annotated[
        float | None, typer.Option("--cap-kpa", help=f"your personal cap, {CAP_KPA}")
    ] = None,
    profile_file: Annotated[
        Path | None, typer.Option("--profile", help="health profile TOML")
    ] = None,
) -> None:
    """Draw the pressure-time curve with the cap and soft limits."""
    if output.suffix.lower() not in (".png", ".svg"):
        raise InputError([Problem(str(output), "", "the plot file must end in .png or .svg")])
    library = ProgramLibrary()
    program = library.get(name)
    device = default_device(program, device_model)
    profile = build_profile(profile_file, pregnant=False, cap_kpa=cap_kpa)
    verdict = screen(program, device, library.catalog, profile)
    if verdict.schedule is None or verdict.limits is None:
        raise PlanRefused(list(verdict.hard))
    title = f"{program.title} on {device.name}"
    if verdict.hard:
        title += " — REFUSED"
    plot_schedule(
        verdict.schedule,
        output,
        title=title,
        lines=reference_lines(verdict.limits, verdict.schedule, profile),
    )
    out.print(f"wrote {output}")


@app.command("schema")
def schema() -> None:
    """JSON Schema of the program file format, for editors."""
    out.print_json(json.dumps(Program.model_json_schema()))
