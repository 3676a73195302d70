"""Hostile and unlucky input: one clear line naming the file and field, exit 2, nothing
written, never a traceback or a hang."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.files import MAX_FILE_BYTES
from acudevice.plan.program import MAX_PHASES
from acudevice.store import Journal

pytestmark = pytest.mark.unit

runner = CliRunner()

PROGRAM = """name = "mine"
title = "Mine"
description = "d"
indication = "nausea"
actuator = "pressure"
repeats = 3
[[sites]]
point = "P6"
[[phases]]
kind = "ramp"
duration_s = {ramp}
target_kpa = {target}
[[phases]]
kind = "hold"
duration_s = 60
[[phases]]
kind = "release"
duration_s = 30
"""


def program_text(ramp: str = "30", target: str = "10") -> str:
    return PROGRAM.format(ramp=ramp, target=target)


def write(tmp: Path, name: str, data: str | bytes) -> Path:
    path = tmp / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe.toml"
    os.mkfifo(path)
    return path


def validate(path: Path) -> list[str]:
    return ["programs", "validate", str(path)]


def profile(tmp: Path, body: str) -> list[str]:
    return ["check", "nausea-relief", "--profile", str(write(tmp, "me.toml", body))]


def many_phases(tmp: Path) -> list[str]:
    phases = '[[phases]]\nkind = "hold"\nduration_s = 1\n' * (MAX_PHASES + 1)
    return validate(write(tmp, "long.toml", program_text() + phases))


Case = Callable[[Path], list[str]]
CASES: dict[str, tuple[Case, str]] = {
    "duration rounds to 0 ms": (
        lambda t: validate(write(t, "p.toml", program_text(ramp="0.0001"))),
        "phases[0].duration_s: must be at least 0.001 s",
    ),
    "UTF-16 file": (
        lambda t: validate(write(t, "p.toml", program_text().encode("utf-16"))),
        "not UTF-8",
    ),
    "Latin-1 file": (
        lambda t: validate(write(t, "p.toml", "# caf\xe9\n".encode("latin-1"))),
        "not UTF-8",
    ),
    "UTF-16 profile": (
        lambda t: [
            "check",
            "nausea-relief",
            "--profile",
            str(write(t, "me.toml", "a=1".encode("utf-16"))),
        ],
        "me.toml: not UTF-8",
    ),
    "nested 5000 deep": (
        lambda t: validate(write(t, "p.toml", "a = " + "[" * 5000 + "]" * 5000)),
        "nested too deeply",
    ),
    "--cap-kpa nan": (lambda t: ["check", "nausea-relief", "--cap-kpa", "nan"], "--cap-kpa"),
    "--cap-kpa inf": (lambda t: ["check", "nausea-relief", "--cap-kpa", "inf"], "--cap-kpa"),
    "--cap-kpa 1e308": (lambda t: ["check", "nausea-relief", "--cap-kpa", "1e308"], "--cap-kpa"),
    "run --cap-kpa nan": (
        lambda t: ["run", "nausea-relief", "--cap-kpa", "nan", "--device", "sim://?speed=max"],
        "--cap-kpa",
    ),
    "cap_kpa = inf in a profile": (lambda t: profile(t, "cap_kpa = inf"), "me.toml:cap_kpa"),
    'cap_kpa = "5" in a profile': (lambda t: profile(t, 'cap_kpa = "5"'), "me.toml:cap_kpa"),
    "pregnant = 1 in a profile": (lambda t: profile(t, "pregnant = 1"), "me.toml:pregnant"),
    "/dev/zero": (lambda t: validate(Path("/dev/zero")), "/dev/zero: not a regular file"),
    "a FIFO": (lambda t: validate(fifo(t)), "pipe.toml: not a regular file"),
    "a 10 MB file": (
        lambda t: validate(write(t, "big.toml", program_text() + "#" * 10_000_000)),
        f"at most {MAX_FILE_BYTES} allowed",
    ),
    "too many phases": (many_phases, "long.toml:phases: "),
    'target_kpa = "12"': (
        lambda t: validate(write(t, "p.toml", program_text(target='"12"'))),
        "p.toml:phases[0].target_kpa: Input should be a valid number",
    ),
    "target_kpa = true": (
        lambda t: validate(write(t, "p.toml", program_text(target="true"))),
        "p.toml:phases[0].target_kpa: Input should be a valid number",
    ),
    "repeats = 3.0": (
        lambda t: validate(
            write(t, "p.toml", program_text().replace("repeats = 3", "repeats = 3.0"))
        ),
        "p.toml:repeats: Input should be a valid integer",
    ),
    "history --limit 1e20": (
        lambda t: ["history", "--limit", "99999999999999999999"],
        "--limit: must be 1 to",
    ),
}


def journal_state(home: Path) -> str | None:
    path = home / "data" / "journal.sqlite3"
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gets_one_line_and_exit_2(
    name: str, tmp_path: Path, isolated_home: Path
) -> None:
    make, expected = CASES[name]
    args = make(tmp_path)
    before = journal_state(isolated_home)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and expected in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert journal_state(isolated_home) == before


def test_a_damaged_journal_is_named_not_a_traceback(isolated_home: Path) -> None:
    with Journal():
        pass
    path = isolated_home / "data" / "journal.sqlite3"
    data = bytearray(path.read_bytes())
    data[0:16] = b"\xff\xfe" * 8  # the header overwritten
    path.write_bytes(bytes(data))
    result = runner.invoke(app, ["history"])
    assert (result.exit_code == 2 and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    assert "journal.sqlite3" in result.stderr and "journal" in result.stderr.splitlines()[0]


def test_a_read_only_journal_refuses_before_the_band_is_touched(isolated_home: Path) -> None:
    with Journal():
        pass
    path = isolated_home / "data" / "journal.sqlite3"
    before = path.read_bytes()
    path.chmod(0o400)
    if os.access(path, os.W_OK):  # root writes through modes: block the write-ahead log instead
        (path.parent / "journal.sqlite3-wal").mkdir()
    result = runner.invoke(app, ["run", "nausea-relief", "--device", "sim://?speed=max"])
    assert result.exit_code == 2, result.output
    assert "journal.sqlite3" in result.stderr and "SIMULATOR" not in result.stdout
    assert path.read_bytes() == before


# ---------------------------------------------------------------- random documents

KEYS = [
    "name", "title", "description", "indication", "actuator", "repeats", "rest_between_s",
    "frequency_hz", "sites", "phases", "point", "side", "kind", "duration_s", "target_kpa",
    "target_fraction", "target_intensity", "label", "x",
]  # fmt: skip
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["ramp", "hold", "release", "rest", "pressure", "vibration", "P6", "mine"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.dictionaries(st.sampled_from(KEYS), values, max_size=10))
def test_programs_validate_never_tracebacks_on_random_documents(
    document: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "random.toml"
    path.write_text("\n".join(f"{k} = {toml_value(v)}" for k, v in document.items()), "utf-8")
    result = runner.invoke(app, ["programs", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert str(path) in result.stderr


VALID: dict[str, Any] = {
    "name": "mine",
    "title": "Mine",
    "description": "d",
    "indication": "nausea",
    "actuator": "pressure",
    "repeats": 3,
    "sites": [{"point": "P6"}],
    "phases": [
        {"kind": "ramp", "duration_s": 30, "target_kpa": 10},
        {"kind": "hold", "duration_s": 60},
        {"kind": "release", "duration_s": 30},
    ],
}
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=4000),
    st.integers(min_value=-5, max_value=200),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    where=st.sampled_from(["repeats", "rest_between_s", "frequency_hz", 0, 1, 2]),
    key=st.sampled_from(["duration_s", "target_kpa", "target_fraction", "target_intensity"]),
    value=st.one_of(numbers, scalars),
)
def test_programs_validate_never_tracebacks_on_a_valid_program_with_one_value_changed(
    where: str | int, key: str, value: Any, tmp_path: Path
) -> None:
    document = json.loads(json.dumps(VALID))
    if isinstance(where, int):
        document["phases"][where][key] = value
    else:
        document[where] = value
    path = tmp_path / "one-change.toml"
    path.write_text("\n".join(f"{k} = {toml_value(v)}" for k, v in document.items()), "utf-8")
    result = runner.invoke(app, ["programs", "validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert str(path) in result.stderr
