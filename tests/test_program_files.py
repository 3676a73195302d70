"""Program files: what ships, what users add, and every kind of bad file."""

from pathlib import Path

import pytest

from acudevice.errors import InputError
from acudevice.plan.library import ProgramLibrary, parse_program
from acudevice.plan.schedule import PhaseKind

SHIPPED = {
    "nausea-relief",
    "motion-sickness",
    "chemo-nausea",
    "sleep",
    "headache",
    "menstrual-cramps",
    "vibration-nausea",
    "nausea-sham",
}

GOOD = """
name = "my-program"
title = "Mine"
description = "d"
indication = "nausea"
actuator = "pressure"
repeats = 3
[[sites]]
point = "P6"
[[phases]]
kind = "ramp"
duration_s = 30
target_kpa = 10
[[phases]]
kind = "hold"
duration_s = 60
[[phases]]
kind = "release"
duration_s = 30
"""


def problems_for(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "prog.toml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        parse_program(path)
    return [str(p) for p in info.value.problems]


def test_every_required_program_ships_and_loads() -> None:
    assert set(ProgramLibrary().load_all()) >= SHIPPED


def test_nausea_relief_has_the_article_shape() -> None:
    program = ProgramLibrary().get("nausea-relief")
    assert [(p.kind, p.duration_s) for p in program.phases] == [
        (PhaseKind.RAMP, 30),
        (PhaseKind.HOLD, 60),
        (PhaseKind.RELEASE, 30),
    ]
    assert program.repeats == 4
    assert [(s.point, s.side) for s in program.sites] == [("P6", "both")]


def test_user_program_is_listed_beside_shipped_ones(isolated_home: Path) -> None:
    library = ProgramLibrary()
    library.user_dir.mkdir(parents=True)
    (library.user_dir / "mine.toml").write_text(GOOD)
    programs = ProgramLibrary().load_all()
    assert programs["my-program"][0] == "user"
    assert programs["nausea-relief"][0] == "shipped"


def test_user_program_never_silently_shadows_a_shipped_one() -> None:
    library = ProgramLibrary()
    library.user_dir.mkdir(parents=True)
    (library.user_dir / "mine.toml").write_text(GOOD.replace("my-program", "nausea-relief"))
    with pytest.raises(InputError) as info:
        ProgramLibrary().load_all()
    [problem] = info.value.problems
    assert problem.source.endswith("mine.toml") and problem.field == "name"
    assert "already defined" in problem.message


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    [msg] = problems_for(tmp_path, "name = \n")
    assert msg.startswith(str(tmp_path / "prog.toml")) and "malformed TOML" in msg


def test_unknown_field_is_named(tmp_path: Path) -> None:
    assert any(
        "prog.toml:colour: unknown field; the fields here are actuator, description," in m
        for m in problems_for(tmp_path, 'colour = "red"\n' + GOOD)
    )


def test_zero_and_negative_durations_are_refused(tmp_path: Path) -> None:
    msgs = problems_for(
        tmp_path,
        GOOD.replace("duration_s = 30", "duration_s = 0", 1).replace(
            "duration_s = 60", "duration_s = -5"
        ),
    )
    assert any("phases[0].duration_s" in m for m in msgs)
    assert any("phases[1].duration_s" in m for m in msgs)


def test_target_above_the_ceiling_is_refused(tmp_path: Path) -> None:
    msgs = problems_for(tmp_path, GOOD.replace("target_kpa = 10", "target_kpa = 55"))
    assert any("phases[0].target_kpa" in m and "40" in m for m in msgs)


def test_unknown_point_is_named_with_its_site(tmp_path: Path) -> None:
    msgs = problems_for(tmp_path, GOOD.replace('point = "P6"', 'point = "Q99"'))
    assert msgs == [f"{tmp_path / 'prog.toml'}:sites[0].point: unknown point or alias 'Q99'"]


def test_program_with_no_phases_is_refused(tmp_path: Path) -> None:
    text = GOOD.split("[[phases]]")[0]
    assert any(m.endswith(":phases: Field required") for m in problems_for(tmp_path, text))


def test_vibration_units_in_a_pressure_program_are_refused(tmp_path: Path) -> None:
    msgs = problems_for(tmp_path, GOOD.replace("target_kpa = 10", "target_intensity = 0.3"))
    assert any("target_intensity is for vibration programs" in m for m in msgs)


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    msgs = problems_for(
        tmp_path,
        GOOD.replace("repeats = 3", "repeats = 0").replace('point = "P6"', 'point = "Q99"')
        + "extra = 1\n",
    )
    assert len(msgs) == 3
