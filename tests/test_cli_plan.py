"""The plan-side CLI as a user meets it: exit codes, messages, files."""

import json
from pathlib import Path

from typer.testing import CliRunner

from acudevice.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_programs_list_shows_shipped_programs() -> None:
    code, out, _ = run("programs", "list")
    assert code == 0 and "nausea-relief" in out and "vibration-nausea" in out


def test_programs_show_gives_placement_guidance_and_time() -> None:
    code, out, _ = run("programs", "show", "nausea-relief")
    assert code == 0
    assert "between the two central tendons" in out and "8 min 00 s" in out


def test_check_nausea_relief_is_ok() -> None:
    code, out, _ = run("check", "nausea-relief")
    assert code == 0 and out.startswith("OK")


def test_check_headache_when_pregnant_refuses_naming_li4() -> None:
    code, out, _ = run("check", "headache", "--pregnant")
    assert code == 4 and "REFUSED" in out and "LI4" in out and "[pregnancy-point]" in out


def test_check_needs_confirmation_then_records_the_reason(tmp_path: Path) -> None:
    profile = tmp_path / "me.toml"
    profile.write_text("blood_thinners = true\n")
    code, out, _ = run("check", "nausea-relief", "--profile", str(profile))
    assert code == 3 and "--confirm" in out
    code, out, _ = run(
        "check", "nausea-relief", "--profile", str(profile), "--confirm", "GP ok", "--json"
    )
    verdict = json.loads(out)
    assert code == 0 and verdict["status"] == "ok" and verdict["confirmed"][0]["reason"] == "GP ok"


def test_check_with_a_lower_cap_refuses_and_names_the_phase() -> None:
    code, out, _ = run("check", "nausea-relief", "--cap-kpa", "10")
    assert code == 4 and "phases[0] (ramp)" in out


def test_bad_profile_file_is_reported_without_traceback(tmp_path: Path) -> None:
    profile = tmp_path / "me.toml"
    profile.write_text("pregnant = 'maybe'\n")
    code, _, err = run("check", "nausea-relief", "--profile", str(profile))
    assert code == 2 and f"{profile}:pregnant:" in err and "Traceback" not in err


def test_validate_lists_every_problem_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "Bad Name"\nrepeats = 0\n')
    code, _, err = run("programs", "validate", str(bad))
    assert code == 2
    assert (
        f"{bad}:name:" in err
        and f"{bad}:repeats:" in err
        and f"{bad}:phases: Field required" in err
    )


def test_validate_reports_hard_rules_too(tmp_path: Path) -> None:
    text = (
        Path("profiles/programs/nausea-relief.toml")
        .read_text()
        .replace("duration_s = 30\ntarget_kpa", "duration_s = 2\ntarget_kpa")
    )
    prog = tmp_path / "fast.toml"
    prog.write_text(text)
    code, _, err = run("programs", "validate", str(prog))
    assert code == 2 and "phases[0] (ramp)" in err and "device-ramp-rate" in err


def test_validate_accepts_a_good_file() -> None:
    code, out, _ = run("programs", "validate", "profiles/programs/sleep.toml")
    assert code == 0 and "valid" in out


def test_plot_writes_a_png(tmp_path: Path) -> None:
    png = tmp_path / "plan.png"
    code, _, _ = run("programs", "plot", "nausea-relief", "-o", str(png))
    assert (
        code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    )
    assert list(tmp_path.iterdir()) == [png], "no temporary files left behind"
    assert png.stat().st_mode & 0o044, "readable by others, like any file the user makes"


def test_plot_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    code, _, err = run("programs", "plot", "nausea-relief", "-o", str(tmp_path / "no" / "x.png"))
    assert code == 2 and "does not exist" in err


def test_schema_is_json_schema_of_the_program_format() -> None:
    code, out, _ = run("programs", "schema")
    schema = json.loads(out)
    assert code == 0 and {"phases", "sites", "repeats"} <= set(schema["properties"])


def test_unknown_program_exits_2_with_the_known_names() -> None:
    code, _, err = run("programs", "show", "nope")
    assert code == 2 and "nausea-relief" in err
