"""Study protocol files (`study.toml`): arms, allocation, the schedule and reminders.

Read like program files (acudevice/files.py): a regular UTF-8 file of bounded size, numbers
that are numbers, and every problem named by file and field. An arm's program is a program
by name (shipped, or the centre's own) or a program file given relative to the study file.
docs/trials.md describes every field.

What a participant sees of an arm is its label: `participant_program` renames the arm's
program after the label and gives it the study's participant-facing title, description and
indication, so neither the arm nor the real program's name reaches a participant's gateway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, ValidationError

from acudevice.errors import InputError, NotFoundError, Problem
from acudevice.files import problems_from_validation, read_toml
from acudevice.plan.allocation import Design, stratum_key
from acudevice.plan.library import ProgramLibrary, parse_program
from acudevice.plan.program import Program
from acudevice.plan.reminders import ReminderSettings
from acudevice.plan.timetable import (
    MAX_DAYS,
    Timetable,
    TimeZoneName,
    Windows,
    check_windows,
    zone,
)

MAX_ARMS = 10
Whole = Annotated[int, Strict()]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$"), Strict()]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500), Strict()]
Label = Annotated[
    str, StringConstraints(pattern=r"^\w[\w .,'()&+-]{0,39}$"), Strict()
]  # shown on a gateway's screen, Home Assistant and MQTT state: no control characters
AttributeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
AttributeValue = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$"), Strict()]


class ScheduleSpec(BaseModel):
    """When sessions are due: one in each window, every day, for `days` days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: TimeZoneName
    days: Whole = Field(ge=1, le=MAX_DAYS)
    start_after_days: Whole = Field(default=1, ge=0, le=60)
    """The first day: this many days after the day of enrolment (0: that same day)."""
    windows: Windows

    def timetable(
        self,
        enrolled_at: dt.datetime,
        *,
        first_day: dt.date | None = None,
        timezone: str | None = None,
    ) -> Timetable:
        """A participant's timetable: from their enrolment, or from `first_day` if given."""
        tz = timezone or self.timezone
        if first_day is None:
            local = enrolled_at.astimezone(zone(tz)).date()
            first_day = local + dt.timedelta(days=self.start_after_days)
        return Timetable(timezone=tz, first_day=first_day, days=self.days, windows=self.windows)


class ArmSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Slug
    """Sealed: only the allocation table and an unblinding reveal it."""
    program: Annotated[str, StringConstraints(min_length=1, max_length=300), Strict()]
    """A program's name, or a program file's path relative to the study file."""
    label: Label
    """What the participant (and everything they see) calls it: "Study programme"."""
    ratio: Whole = Field(default=1, ge=1, le=10)
    schedule: ScheduleSpec | None = None
    """This arm's own schedule, instead of the study's."""


class AllocationSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: Whole = Field(ge=0, le=2**63 - 1)
    block_sizes: Annotated[tuple[Whole, ...], Field(min_length=1, max_length=5)]
    strata: Annotated[
        dict[
            AttributeName, Annotated[tuple[AttributeValue, ...], Field(min_length=1, max_length=50)]
        ],
        Field(max_length=4),
    ] = {}
    """Participant attributes to stratify by, each with the values it may take."""


class StudyProtocol(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Slug
    title: Text
    blinded: Annotated[bool, Strict()] = True
    participant_description: Text
    """Shown to participants as their program's description, whatever their arm."""
    participant_indication: Annotated[str, StringConstraints(min_length=1, max_length=80), Strict()]
    arms: Annotated[tuple[ArmSpec, ...], Field(min_length=2, max_length=MAX_ARMS)]
    allocation: AllocationSpec
    schedule: ScheduleSpec | None = None
    reminders: ReminderSettings | None = None


def label_name(label: str) -> str:
    """The program name a participant's gateway knows an arm by: "Study programme" ->
    "study-programme"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:64]


def program_seconds(program: Program) -> float:
    one = sum(phase.duration_s for phase in program.phases)
    return program.repeats * one + program.rest_between_s * (program.repeats - 1)


@dataclass(frozen=True)
class Study:
    """A validated protocol with each arm's program loaded."""

    path: Path
    protocol: StudyProtocol
    programs: dict[str, Program]
    """By arm name."""

    @property
    def name(self) -> str:
        return self.protocol.name

    @property
    def design(self) -> Design:
        a = self.protocol.allocation
        return Design(
            a.seed, tuple((arm.name, arm.ratio) for arm in self.protocol.arms), a.block_sizes
        )

    def arm(self, name: str) -> ArmSpec:
        return next(arm for arm in self.protocol.arms if arm.name == name)

    def schedule(self, arm: str) -> ScheduleSpec:
        spec = self.arm(arm).schedule or self.protocol.schedule
        assert spec is not None  # checked when read
        return spec

    def digest(self) -> str:
        """What enrolment must not change once a study has begun: everything but the title."""
        body = self.protocol.model_dump(mode="json", exclude={"title"})
        body["programs"] = {arm: p.model_dump(mode="json") for arm, p in self.programs.items()}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def stratum(self, attributes: dict[str, str], source: str = "--attribute") -> str:
        """The stratum of a participant with `attributes`; InputError naming what is wrong."""
        strata = self.protocol.allocation.strata
        problems = [
            Problem(source, name, "not an attribute this study stratifies by"
                    + (f"; it stratifies by {', '.join(sorted(strata))}" if strata else ""))
            for name in attributes if name not in strata
        ]  # fmt: skip
        for name, values in strata.items():
            given = attributes.get(name)
            if given is None:
                problems.append(Problem(source, name, f"missing: give {name}=VALUE"))
            elif given not in values:
                problems.append(
                    Problem(source, name, f"{given!r} is not one of {', '.join(values)}")
                )
        if problems:
            raise InputError(problems)
        return stratum_key(attributes, list(strata))

    def participant_program(self, arm: str) -> Program:
        """The arm's program as its participant's gateway receives it: named after the label,
        described in the study's participant-facing words, its phases unlabelled."""
        program = self.programs[arm]
        label = self.arm(arm).label
        data = program.model_dump(mode="python")
        data.update(
            name=label_name(label),
            title=label,
            description=self.protocol.participant_description,
            indication=self.protocol.participant_indication,
        )
        data["phases"] = [{**phase, "label": None} for phase in data["phases"]]
        return Program.model_validate(data)


def parse_protocol(path: Path, library: ProgramLibrary | None = None) -> Study:
    """Validate a study file and load its arms' programs; InputError lists every problem."""
    source = str(path)
    data = read_toml(path)
    try:
        protocol = StudyProtocol.model_validate(data)
    except ValidationError as exc:
        found = problems_from_validation(source, exc, StudyProtocol)
        # a misspelt key first: it explains the "Field required" that comes with it
        found.sort(key=lambda p: not p.message.startswith("unknown field"))
        raise InputError(found) from None
    problems = _cross_checks(source, protocol)
    programs: dict[str, Program] = {}
    library = library or ProgramLibrary()
    for i, arm in enumerate(protocol.arms):
        try:
            programs[arm.name] = _arm_program(path, arm.program, library)
        except (InputError, NotFoundError) as exc:
            problems.append(Problem(source, f"arms[{i}].program", _one_line(exc)))
            if isinstance(exc, InputError):
                problems += exc.problems
    if problems:
        raise InputError(problems)
    study = Study(path, protocol, programs)
    problems = _program_checks(source, study, library)
    if problems:
        raise InputError(problems)
    return study


def _one_line(exc: InputError | NotFoundError) -> str:
    if isinstance(exc, NotFoundError):
        return str(exc)
    return "the program file has problems (listed after this line)"


def _arm_program(study_path: Path, ref: str, library: ProgramLibrary) -> Program:
    if "/" in ref or ref.endswith(".toml"):
        if Path(ref).is_absolute():
            raise NotFoundError(f"{ref!r}: give a program file's path relative to the study file")
        return parse_program(study_path.parent / ref, library.catalog)
    programs = library.load_all()
    if ref not in programs:
        raise NotFoundError(
            f"unknown program {ref!r}; known programs: {', '.join(sorted(programs))}"
        )
    return programs[ref][1]


def _cross_checks(source: str, protocol: StudyProtocol) -> list[Problem]:
    problems: list[Problem] = []

    def add(field: str, message: str) -> None:
        problems.append(Problem(source, field, message))

    seen: dict[str, int] = {}
    labels: dict[str, str] = {}
    for i, arm in enumerate(protocol.arms):
        if arm.name in seen:
            add(f"arms[{i}].name", f"{arm.name!r} is already the name of arms[{seen[arm.name]}]")
        seen.setdefault(arm.name, i)
        slug = label_name(arm.label)
        if not slug:
            add(f"arms[{i}].label", "needs at least one letter or digit a-z, 0-9")
        elif labels.setdefault(slug, arm.label) != arm.label:
            add(f"arms[{i}].label", f"{arm.label!r} reads as {labels[slug]!r} on a gateway; "
                "give the same label or one clearly different")  # fmt: skip
        if slug in {a.name for a in protocol.arms} | {a.program for a in protocol.arms}:
            add(f"arms[{i}].label", "must not name an arm or a program: participants see it")
        if arm.schedule is None and protocol.schedule is None:
            add(f"arms[{i}].schedule", "missing: give [schedule] for the study, or one per arm")
        for j, problem in check_windows(arm.schedule.windows if arm.schedule else ()):
            add(f"arms[{i}].schedule.windows[{j}]", problem)
    for j, problem in check_windows(protocol.schedule.windows if protocol.schedule else ()):
        add(f"schedule.windows[{j}]", problem)
    total = sum(arm.ratio for arm in protocol.arms)
    sizes = protocol.allocation.block_sizes
    for j, size in enumerate(sizes):
        if size < 1 or size > 100 or size % total:
            add(f"allocation.block_sizes[{j}]",
                f"{size} is not a multiple of the arms' ratios' sum {total} from 1 to 100")  # fmt: skip
        elif size in sizes[:j]:
            add(f"allocation.block_sizes[{j}]", f"{size} is listed twice")
    for name, values in protocol.allocation.strata.items():
        if len(set(values)) != len(values):
            add(f"allocation.strata.{name}", "a value is listed twice")
    if protocol.blinded and not problems:
        schedules = {arm.schedule or protocol.schedule for arm in protocol.arms}
        if len(schedules) > 1:
            add("arms", "a blinded study's arms must share one schedule: a different timetable "
                "tells participants and analysts their arm (set blinded = false for an open study)")  # fmt: skip
    return problems


def _program_checks(source: str, study: Study, library: ProgramLibrary) -> list[Problem]:
    """Checks that need the programs: names, and what would unblind a blinded study."""
    problems: list[Problem] = []
    arms = study.protocol.arms
    known = set(library.load_all())
    for i, arm in enumerate(arms):
        slug = label_name(arm.label)
        if slug in known or slug in {p.name for p in study.programs.values()}:
            problems.append(Problem(source, f"arms[{i}].label", f"{arm.label!r} is the name of "
                                    "a program: participants would know what they run"))  # fmt: skip
    if not study.protocol.blinded:
        return problems
    first = study.programs[arms[0].name]
    for i, arm in enumerate(arms[1:], start=1):
        program = study.programs[arm.name]
        if program.actuator != first.actuator:
            problems.append(Problem(source, f"arms[{i}].program", f"a {program.actuator} program "
                f"beside a {first.actuator} one: a blinded study's arms use one kind of band"))  # fmt: skip
        elif abs(program_seconds(program) - program_seconds(first)) > 0.0005:
            problems.append(Problem(source, f"arms[{i}].program",
                f"lasts {program_seconds(program):g} s, arms[0]'s {program_seconds(first):g} s: "
                "a blinded study's sessions must last the same (blinded = false for an open study)"))  # fmt: skip
    return problems
