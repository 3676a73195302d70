"""Words a person reads: file text printed as written (never as rich markup or emoji), the
closest field name suggested, units and rules on range errors, a readable verdict, hints that
work when pasted, and states by name."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import acudevice
from acudevice import connect, screen
from acudevice.cli import common
from acudevice.cli.main import app
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.protocol import FaultCode, FirmwareState, Result
from acudevice.safety.profile import HealthProfile
from acudevice.safety.rules import RuleId

pytestmark = pytest.mark.unit

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
TYPO = """name = "typo"
title = "Typo"
description = "d"
indication = "nausea"
actuator = "pressure"
repeat = 2
[[sites]]
point = "P6"
sid = "left"
[[phases]]
kind = "ramp"
duration_s = 30
target_kpa = 8000
[[phases]]
kind = "release"
duration_s = 30
"""


def test_a_field_named_like_an_emoji_code_is_printed_as_written(tmp_path: Path) -> None:
    """`repeat` (rich's :repeat: emoji) once printed as `typo-field2.toml🔁 unknown field`."""
    path = tmp_path / "typo-field2.toml"
    path.write_text(TYPO)
    for argv in (["programs", "validate", str(path)], ["run", str(path)]):
        done = runner.invoke(app, argv)
        assert done.exit_code == 2, done.output
        assert f"{path}:repeat: unknown field; did you mean `repeats`?" in done.stderr
        assert f"{path}:sites[0].sid: unknown field; did you mean `side`?" in done.stderr
        assert "🔁" not in done.stderr


def test_a_target_above_the_ceiling_names_the_unit_and_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "high.toml"
    path.write_text(TYPO.replace("repeat = 2", "repeats = 2").replace('sid = "left"', ""))
    done = runner.invoke(app, ["programs", "validate", str(path)])
    assert done.exit_code == 2
    assert (
        f"{path}:phases[0].target_kpa: 8000 kPa is above the absolute ceiling of 40 kPa "
        f"(rule {RuleId.ABSOLUTE_CEILING}, docs/safety.md)"
    ) in done.stderr
    assert "less than or equal" not in done.stderr


def test_profile_bounds_and_typos_name_units_rules_and_the_closest_field(tmp_path: Path) -> None:
    me = tmp_path / "me.toml"
    me.write_text("blood_thinner = true\ncap_kpa = 50\nfragile_skin = true\n")
    done = runner.invoke(app, ["check", "nausea-relief", "--profile", str(me)])
    assert done.exit_code == 2
    assert f"{me}:blood_thinner: unknown field; did you mean `blood_thinners`?" in done.stderr
    assert f"{me}:cap_kpa: 50 kPa is above the absolute ceiling of 40 kPa" in done.stderr


def test_an_unknown_field_with_nothing_close_lists_the_fields_there(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TYPO.replace("repeat = 2", "repeats = 2\nzzz = 1").replace('sid = "left"', ""))
    done = runner.invoke(app, ["programs", "validate", str(path)])
    assert f"{path}:zzz: unknown field; the fields here are actuator, description," in done.stderr


def test_the_consoles_print_markup_and_emoji_codes_literally(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The bridge console once dropped `[comfort-max]` from a refusal it printed."""
    text = "sim-0001: refused [comfort-max] peak 12 kPa :repeat: [red]x[/red] [/]"
    common.err.print(text)
    common.out.print(text)
    captured = capsys.readouterr()
    assert captured.err.strip() == text and captured.out.strip() == text


def test_a_soft_finding_keeps_its_rule_in_brackets(tmp_path: Path) -> None:
    me = tmp_path / "me.toml"
    me.write_text("comfort_max_kpa = { PC6 = 5.0 }\n")
    done = runner.invoke(app, ["check", "nausea-relief", "--profile", str(me)])
    assert done.exit_code == 3, done.output
    assert "needs confirmation [comfort-max] peak 12 kPa is above your comfortable" in done.stdout


def test_a_verdict_prints_in_a_few_readable_lines() -> None:
    library = ProgramLibrary()
    profile = HealthProfile(blood_thinners=True, comfort_max_kpa={"PC6": 5.0})
    verdict = screen(
        library.get("nausea-relief"), load_device("wristband-p1"), library.catalog, profile
    )
    text = str(verdict)
    assert len(text) < 1000, text  # the model's repr, schedule and all, is kilobytes
    lines = text.splitlines()
    assert lines[0] == "needs-confirmation: nausea-relief on wristband-p1"
    assert "[comfort-max]" in text and "[bleeding-risk]" in text
    assert 'confirm_reason="REASON"' in lines[-1] and '--confirm "REASON"' in lines[-1]
    with pytest.raises(acudevice.SessionRefused) as refused:
        raise acudevice.SessionRefused(verdict)
    assert str(refused.value.verdict) == text


def test_the_api_doc_lists_every_exported_error() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    table = doc[doc.index("## Errors") :]
    for name in acudevice.__all__:
        thing = getattr(acudevice, name)
        if isinstance(thing, type) and issubclass(thing, Exception) and name != "AcuDeviceError":
            assert f"`acudevice.{name}`" in table, name


def test_states_faults_and_results_print_by_name_and_stay_numbers() -> None:
    assert str(FirmwareState.RUNNING) == "RUNNING" and f"{FaultCode.WATCHDOG}" == "WATCHDOG"
    assert f"{Result.ABOVE_CAP}" == "ABOVE_CAP" and f"{Result.ABOVE_CAP:02X}" == "04"
    assert FirmwareState.RUNNING == 2 and int(FirmwareState.RUNNING) == 2


@pytest.mark.sim
def test_a_telemetry_sample_prints_its_state_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    async def first_sample() -> None:
        async with connect("sim://?speed=max") as band:
            async for sample in band.telemetry():
                print(sample.state)  # as docs/api.md's example does
                return

    asyncio.run(first_sample())
    assert capsys.readouterr().out.strip() == "IDLE"


def test_an_empty_history_says_so_in_words() -> None:
    done = runner.invoke(app, ["history"])
    assert done.exit_code == 0
    assert "No sessions yet" in done.stdout and "┏" not in done.stdout
    assert "acudevice run nausea-relief" in done.stdout


def test_the_hint_names_this_home_and_the_acudevice_not_on_path(
    monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    monkeypatch.setattr(sys, "argv", [".venv/bin/acudevice"])
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert common.shell_command("report", "1") == (
        f"ACUDEVICE_HOME={isolated_home} .venv/bin/acudevice report 1"
    )


@pytest.mark.sim
def test_the_report_hint_after_a_run_works_pasted_into_a_shell(
    isolated_home: Path, tmp_path: Path
) -> None:
    done = runner.invoke(app, ["run", "nausea-relief", "--device", "sim://?speed=max&seed=1"])
    assert done.exit_code == 0, done.output
    [hint] = [line for line in done.stdout.splitlines() if line.startswith("report: ")]
    command = hint.removeprefix("report: ")
    env = {k: v for k, v in os.environ.items() if k != "ACUDEVICE_HOME"}  # the hint carries it
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    pasted = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert pasted.returncode == 0, pasted.stderr
    assert (tmp_path / "session-1.png").stat().st_size > 0


def test_make_demo_ends_with_a_command_that_finds_the_demos_journal() -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    dry = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry.returncode == 0, dry.stderr
    echoed = [line for line in dry.stdout.splitlines() if "acudevice history" in line]
    assert echoed and f"ACUDEVICE_HOME={ROOT}/demo-output/home" in echoed[-1]
    assert ".venv/bin/acudevice history" in echoed[-1]
