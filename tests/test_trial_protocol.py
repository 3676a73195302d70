"""Study protocol files: the shipped example, what participants receive, and hostile files
refused in one line naming the file and field."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from acudevice.bridge.participant_protocol import decode, encode, for_participant
from acudevice.cli.main import app
from acudevice.errors import InputError
from acudevice.paths import shipped_profiles_dir
from acudevice.plan.protocol import label_name, parse_protocol
from acudevice.study.protocols import load_study, screened

pytestmark = pytest.mark.unit
runner = CliRunner()
EXAMPLE = shipped_profiles_dir() / "studies" / "nausea-trial.toml"
TEXT = EXAMPLE.read_text()


def study_file(tmp: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def edited(*pairs: tuple[str, str]) -> str:
    text = TEXT
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_the_shipped_example_loads_and_both_arms_pass_screening() -> None:
    study = load_study(EXAMPLE)
    assert [a.name for a in study.protocol.arms] == ["active", "sham"]
    assert study.programs["active"].name == "nausea-relief"
    assert study.programs["sham"].name == "nausea-sham"
    assert {v.status for v in screened(study).values()} == {"ok"}
    assert study.protocol.allocation.strata == {"site": ("leeds", "london")}


def test_the_program_a_participant_receives_names_neither_the_arm_nor_the_program() -> None:
    study = parse_protocol(EXAMPLE)
    for arm in ("active", "sham"):
        payload = for_participant(
            study, arm, "P017", study.schedule(arm).timetable(dt_now()), at=1.0
        )
        text = encode(payload).decode()
        for secret in ("active", "sham", "nausea-relief", "nausea-sham", "Nausea relief"):
            assert secret not in text, (arm, secret)
        assert payload.label == "Study programme" and payload.program.name == "study-programme"
        assert payload.program.title == "Study programme"
        real = study.programs[arm]
        assert payload.program.phases == tuple(
            p.model_copy(update={"label": None}) for p in real.phases
        ), "the same phases and pressures: only the names change"
        again = decode(encode(payload), "acudevice/study/participants/P017/protocol")
        assert again == payload
    assert label_name("Programme A") == "programme-a"


def dt_now() -> Any:
    import datetime as dt

    return dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.UTC)


def test_a_delivered_protocol_is_refused_when_it_is_not_for_the_topic_or_malformed() -> None:
    study = parse_protocol(EXAMPLE)
    payload = encode(
        for_participant(study, "sham", "P017", study.schedule("sham").timetable(dt_now()))
    )
    with pytest.raises(InputError, match="not the participant of the topic"):
        decode(payload, "acudevice/study/participants/P018/protocol")
    broken = json.loads(payload)
    broken["program"]["phases"][0]["target_kpa"] = "3"
    with pytest.raises(InputError) as info:
        decode(json.dumps(broken).encode(), "t/study/participants/P017/protocol")
    assert str(info.value.problems[0]).startswith(
        "t/study/participants/P017/protocol:program.phases[0].target_kpa"
    )
    broken = json.loads(payload)
    broken["program"]["sites"][0]["point"] = "XX99"
    with pytest.raises(InputError, match=r"program.sites\[0\].point: unknown point"):
        decode(json.dumps(broken).encode(), "t/study/participants/P017/protocol")
    with pytest.raises(InputError, match="at most"):
        decode(b"{" + b" " * 70_000 + b"}", "t/study/participants/P017/protocol")
    assert decode(b"", "t/study/participants/P017/protocol") is None, "cleared: withdrawn"


HIGH = """name = "too-high"
title = "t"
description = "d"
indication = "nausea"
actuator = "pressure"
repeats = 4
[[sites]]
point = "P6"
[[phases]]
kind = "ramp"
duration_s = 30
target_kpa = {target}
[[phases]]
kind = "hold"
duration_s = 60
[[phases]]
kind = "release"
duration_s = 30
"""


def own_program(tmp: Path, target: str = "50", repeats: int = 4) -> None:
    text = HIGH.format(target=target).replace("repeats = 4", f"repeats = {repeats}")
    (tmp / "progs").mkdir(exist_ok=True)
    (tmp / "progs" / "mine.toml").write_text(text)


CASES: dict[str, tuple[str, str]] = {
    "seed as a string": (edited(("seed = 20270115", 'seed = "20270115"')), "allocation.seed: Input should be a valid integer"),
    "seed nan": (edited(("seed = 20270115", "seed = nan")), "allocation.seed: Input should be a valid integer"),
    "blinded = 1": (edited(("blinded = true", "blinded = 1")), "blinded: Input should be a valid boolean"),
    "block of 3 for 1:1": (edited(("block_sizes = [2, 4]", "block_sizes = [3]")), "allocation.block_sizes[0]: 3 is not a multiple"),
    "overlapping windows": (edited(('start = "13:00"', 'start = "09:30"')), "schedule.windows[1]: starts at 09:30, before window 1 ends"),
    "25 o'clock": (edited(('start = "08:00"', 'start = "25:00"')), "schedule.windows[0].start: '25:00' is not a time of day"),
    "window ends before it starts": (edited(('end = "10:00"', 'end = "07:00"')), "schedule.windows[0]: a window must end"),
    "unknown time zone": (edited(('"Europe/London"', '"Mars/Olympus"')), "schedule.timezone: unknown time zone 'Mars/Olympus'"),
    "time zone as a path": (edited(('"Europe/London"', '"../../etc/passwd"')), "schedule.timezone: '../../etc/passwd' is not an IANA time zone"),
    "zero days": (edited(("days = 7", "days = 0")), "schedule.days: 0 is below the minimum of 1"),
    "misspelt field": (edited(("blinded = true", "blined = true")), "study.toml:blined: unknown field; did you mean `blinded`?"),
    "misspelt seed": (edited(("seed = ", "seeed = ")), "allocation.seeed: unknown field; did you mean `seed`?"),
    "label with a control character": (edited(('label = "Study programme"', 'label = "Study\\u0007"')), "arms[0].label: String should match pattern"),
    "label is a program's name": (edited(('label = "Study programme"', 'label = "Headache"'), ('label = "Study programme"', 'label = "Headache"')), "arms[0].label: 'Headache' is the name of a program"),
    "label names the arm's program": (edited(('label = "Study programme"', 'label = "Nausea relief"')), "arms[0].label: must not name an arm or a program"),
    "label names an arm": (edited(('label = "Study programme"', 'label = "Sham"'), ('label = "Study programme"', 'label = "Sham"')), "arms[0].label: must not name an arm or a program"),
    "unknown program": (edited(('program = "nausea-sham"', 'program = "nausea-shame"')), "arms[1].program: unknown program 'nausea-shame'"),
    "absolute program path": (edited(('program = "nausea-sham"', 'program = "/etc/passwd.toml"')), "arms[1].program: '/etc/passwd.toml': give a program file's path relative"),
    "program file over the ceiling": (edited(('program = "nausea-sham"', 'program = "progs/mine.toml"')), "arms[1].program: the program file has problems"),
    "arms that last differently": (edited(('program = "nausea-sham"', 'program = "motion-sickness"')), "arms[1].program: lasts 690 s, arms[0]'s 480 s"),
    "a schedule of its own in a blinded study": (edited(('label = "Study programme"\n\n[allocation]', 'label = "Study programme"\nschedule = { timezone = "UTC", days = 7, windows = [{ start = "08:00", end = "10:00" }] }\n\n[allocation]')), "study.toml:arms: a blinded study's arms must share one schedule"),
    "a program that needs a confirmation": (edited(("blinded = true", "blinded = false"), ('program = "nausea-sham"', 'program = "progs/ok.toml"')), "arms[1].program: too-high is needs-confirmation by screening"),
    "a stratum value twice": (edited(('site = ["leeds", "london"]', 'site = ["leeds", "leeds"]')), "allocation.strata.site: a value is listed twice"),
    "no schedule at all": (TEXT[: TEXT.index("[schedule]")] + TEXT[TEXT.index("[reminders]") :], "study.toml:arms[0].schedule: missing"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_protocol_gets_one_line_naming_file_and_field(name: str, tmp_path: Path) -> None:
    text, expected = CASES[name]
    own_program(tmp_path)
    (tmp_path / "progs" / "ok.toml").write_text(
        HIGH.format(target="3").replace("repeats = 4", "repeats = 6")
    )
    path = study_file(tmp_path, text)
    result = runner.invoke(app, ["study", "protocol", str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and expected in lines[0], result.stderr
    assert lines[0].startswith(f"error: {path}:"), lines[0]
    assert "Traceback" not in result.output


def test_a_program_file_over_the_ceiling_is_named_after_the_study_field(tmp_path: Path) -> None:
    own_program(tmp_path)
    path = study_file(tmp_path, CASES["program file over the ceiling"][0])
    with pytest.raises(InputError) as info:
        parse_protocol(path)
    said = [str(p) for p in info.value.problems]
    assert said[0].startswith(f"{path}:arms[1].program")
    assert any(
        "mine.toml:phases[0].target_kpa: 50 kPa is above the absolute ceiling" in s for s in said
    )


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "big"])
def test_files_that_are_not_protocols_are_refused_before_reading(kind: str, tmp_path: Path) -> None:
    if kind == "/dev/zero":
        path = Path("/dev/zero")
        expected = "/dev/zero: not a regular file"
    elif kind == "fifo":
        path = tmp_path / "study.toml"
        os.mkfifo(path)
        expected = "study.toml: not a regular file"
    else:
        path = study_file(tmp_path, TEXT + "#" * 1_000_000)
        expected = "allowed"
    result = runner.invoke(app, ["study", "protocol", str(path)])
    assert result.exit_code == 2 and expected in result.stderr.splitlines()[0], result.stderr


def test_the_protocol_summary_says_what_participants_see(tmp_path: Path) -> None:
    result = runner.invoke(app, ["study", "protocol", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "participants see 'Study programme'" in result.stdout
    assert "screening ok on wristband-p1" in result.stdout


KEYS = ["name", "title", "blinded", "participant_description", "participant_indication",
        "arms", "allocation", "schedule", "reminders", "label", "program", "ratio", "seed",
        "block_sizes", "strata", "timezone", "days", "windows", "start", "end", "x"]  # fmt: skip
scalars = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(["08:00", "Europe/London", "nausea-relief", "a", "../x.toml"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=16,
)  # fmt: skip


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(st.sampled_from(KEYS), values, max_size=8))
def test_random_protocols_never_traceback(document: dict[str, Any], tmp_path: Path) -> None:
    path = study_file(tmp_path, "\n".join(f"{k} = {toml_value(v)}" for k, v in document.items()))
    result = runner.invoke(app, ["study", "protocol", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert str(path) in result.stderr


def test_windows_may_be_toml_times_in_whole_minutes(tmp_path: Path) -> None:
    text = edited(('{ start = "08:00", end = "10:00" }', "{ start = 08:00:00, end = 10:00:00 }"))
    study = parse_protocol(study_file(tmp_path, text))
    assert study.schedule("active").windows[0].start == "08:00"
    seconds = edited(('{ start = "08:00", end = "10:00" }', "{ start = 08:00:30, end = 10:00:00 }"))
    with pytest.raises(InputError, match=r"schedule.windows\[0\].start: .*whole minutes"):
        parse_protocol(study_file(tmp_path, seconds))


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(None, "give the reason"), ("  ", "give the reason"), ("a\nb", "control characters"),
     ("x" * 1001, "at most 1000")],
)  # fmt: skip
def test_an_unblinding_reason_must_be_one_line_of_text(reason: str | None, expected: str) -> None:
    from acudevice.study.allocations import check_reason

    with pytest.raises(InputError, match=expected):
        check_reason(reason)
    assert check_reason(" SAE, DSMB request 4 ") == "SAE, DSMB request 4"


def test_the_acl_names_only_known_gateways_and_pseudonyms() -> None:
    from acudevice.bridge.acl import acl_text

    with pytest.raises(InputError, match="not one of the gateways listed"):
        acl_text(["gw-a"], participants={"gw-b": ["P1"]})
    with pytest.raises(InputError, match="not a participant pseudonym"):
        acl_text(["gw-a"], participants={"gw-a": ["P1/#"]})
    assert "topic read acudevice/study/participants/+/protocol" in acl_text(["gw-a"])
