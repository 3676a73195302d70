"""The safer ways forward `run` offers beside `--confirm`, as a user types them.

`--at-comfort` and `--at-halved-cap` run the program scaled under a level, screened again
in full and run with no confirmation; `--side` wears it on one side for a caution on the
other limb; a verdict that is not ok lists every way that passes (a gentler program too);
`check` with the same flags predicts `run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acudevice.store import Journal
from tests.journal_helpers import begin_row

pytestmark = pytest.mark.sim

FAST = "sim://?speed=max"
SAFE_OVERSHOOT_KPA = 0.3
"""What the band may measure above a plateau it holds (sensor noise and control ripple)."""


def acudevice(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACUDEVICE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def remember(level: int) -> None:
    """A "too strong" at P6 in an earlier session."""
    with Journal() as journal:
        sid = begin_row(journal)
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=0, old_level=12_000, new_level=level
        )
        journal.end_session(sid, outcome="stopped")


def profile(tmp_path: Path, text: str) -> str:
    path = tmp_path / "me.toml"
    path.write_text(text)
    return str(path)


def planned_peak(session_id: int) -> int:
    with Journal() as journal:
        schedule = journal.session(session_id).schedule
    return max(max(s["from_level"], s["to_level"]) for s in schedule["segments"])


def test_at_comfort_runs_under_the_remembered_maximum_without_confirmation(
    isolated_home: Path,
) -> None:
    remember(8_400)
    asked = acudevice(isolated_home, "run", "nausea-relief", "--device", FAST)
    assert asked.returncode == 2 and "NEEDS-CONFIRMATION" in asked.stdout
    assert "with --at-comfort: peak 8.4 kPa" in asked.stdout  # the safer way, offered first
    assert 'Or confirm with a reason, which is recorded: --confirm "REASON"' in asked.stdout
    assert asked.stdout.index("--at-comfort") < asked.stdout.index("--confirm")

    done = acudevice(isolated_home, "run", "nausea-relief", "--device", FAST, "--at-comfort")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adjusted: scaled to 70 % under your comfortable maximum (8.4 kPa)" in done.stdout
    assert "completed" in done.stdout
    with Journal() as journal:
        [session] = [s for s in journal.sessions(5) if s.outcome == "completed"]
        assert session.confirmations == []  # nothing was confirmed: nothing needed it
        peak = session.peak_level
    assert planned_peak(session.id) == 8_400  # the journal keeps the scaled schedule
    assert peak is not None and peak <= 8_400 + SAFE_OVERSHOOT_KPA * 1000


def test_run_json_reports_the_remembered_maximum(isolated_home: Path) -> None:
    remember(8_400)
    done = acudevice(
        isolated_home, "run", "nausea-relief", "--device", FAST, "--at-comfort", "--json"
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["comfort_max_kpa"] == 8.4
    assert summary["adjusted"] == ["scaled to 70 % under your comfortable maximum (8.4 kPa)"]
    assert summary["peak_measured_kpa"] <= 8.4 + SAFE_OVERSHOOT_KPA


def test_at_halved_cap_runs_under_the_cap_a_bleeding_risk_halves(
    isolated_home: Path, tmp_path: Path
) -> None:
    me = profile(tmp_path, "blood_thinners = true\n")
    asked = acudevice(isolated_home, "check", "nausea-relief", "--profile", me)
    assert asked.returncode == 3
    assert "with --at-halved-cap: peak 10 kPa" in asked.stdout
    assert "acudevice check chemo-nausea: a gentler program, peak 10 kPa" in asked.stdout
    done = acudevice(
        isolated_home, "run", "nausea-relief", "--profile", me, "--device", FAST, "--at-halved-cap"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with Journal() as journal:
        [session] = journal.sessions(1)
    assert session.cap_level == 10_000 and session.confirmations == []
    assert planned_peak(session.id) == 10_000
    no_risk = acudevice(isolated_home, "run", "nausea-relief", "--device", FAST, "--at-halved-cap")
    assert no_risk.returncode == 2 and "--at-halved-cap: your profile names no bleeding risk" in (
        no_risk.stderr
    )


def test_side_right_runs_a_both_sides_program_beside_an_iv_line_on_the_left(
    isolated_home: Path, tmp_path: Path
) -> None:
    me = profile(tmp_path, '[limbs]\nleft_arm = ["iv-line"]\n')
    refused = acudevice(isolated_home, "run", "nausea-relief", "--profile", me, "--device", FAST)
    assert refused.returncode == 2 and "REFUSED" in refused.stdout
    assert "use the right side only" in refused.stdout
    assert "with --side right: peak 12 kPa — right side only" in refused.stdout
    assert "--confirm" not in refused.stdout  # no confirmation lifts a hard limit
    wrong = acudevice(isolated_home, "check", "nausea-relief", "--profile", me, "--side", "left")
    assert wrong.returncode == 4 and "with --side right" in wrong.stdout
    done = acudevice(
        isolated_home,
        "run",
        "nausea-relief",
        "--profile",
        me,
        "--device",
        FAST,
        "--side",
        "right",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adjusted: right side only" in done.stdout and "completed" in done.stdout
    pair = acudevice(isolated_home, "run", "nausea-relief", "--side", "right", "--both", FAST)
    assert pair.returncode == 2 and "--side: one side is one band: drop --both" in pair.stderr


def test_a_gentler_program_is_offered_when_it_passes(isolated_home: Path, tmp_path: Path) -> None:
    """Comfort at 8.4 kPa and a bleeding risk: chemo-nausea (half the comfort maximum) passes
    as it is; nausea-relief passes at the comfortable level."""
    remember(8_400)
    me = profile(tmp_path, "fragile_skin = true\n")
    done = acudevice(isolated_home, "check", "nausea-relief", "--profile", me, "--json")
    assert done.returncode == 3
    verdict = json.loads(done.stdout)
    clears = {f["rule"]: f.get("clears_at_kpa") for f in verdict["soft"]}
    assert clears == {"comfort-max": 8.4, "bleeding-risk": 10.0}  # each level it applies above
    ways = {(w["program"], tuple(w["flags"])): w["peak_kpa"] for w in verdict["ways_forward"]}
    assert ways == {("nausea-relief", ("--at-comfort",)): 8.4, ("chemo-nausea", ()): 4.2}
    gentler = acudevice(isolated_home, "run", "chemo-nausea", "--profile", me, "--device", FAST)
    assert gentler.returncode == 0, gentler.stdout + gentler.stderr


BLEEDING = "blood_thinners = true\n"
BRUISED_LEFT = BLEEDING + '[limbs]\nleft_arm = ["bruise"]\n'


@pytest.mark.parametrize(
    ("me", "flags", "status", "exit_run"),
    [
        (BLEEDING, (), "needs-confirmation", 2),
        (BLEEDING, ("--at-comfort",), "ok", 0),
        (BLEEDING, ("--at-halved-cap",), "needs-confirmation", 2),  # 10 kPa: above the 8.4
        (BLEEDING, ("--at-comfort", "--at-halved-cap"), "ok", 0),
        (BRUISED_LEFT, ("--at-comfort",), "refused", 2),
        (BRUISED_LEFT, ("--side", "left", "--at-comfort"), "refused", 2),
        (BRUISED_LEFT, ("--side", "right", "--at-comfort"), "ok", 0),
    ],
)
def test_check_predicts_run_with_the_gentler_flags(
    isolated_home: Path,
    tmp_path: Path,
    me: str,
    flags: tuple[str, ...],
    status: str,
    exit_run: int,
) -> None:
    remember(8_400)
    path = profile(tmp_path, me)
    checked = acudevice(
        isolated_home, "check", "nausea-relief", "--profile", path, *flags, "--json"
    )
    assert json.loads(checked.stdout)["status"] == status, checked.stdout
    ran = acudevice(
        isolated_home, "run", "nausea-relief", "--profile", path, "--device", FAST, *flags
    )
    assert ran.returncode == exit_run, ran.stdout + ran.stderr
    if status != "ok":
        assert status.upper() in ran.stdout
