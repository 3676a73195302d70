""" "Too strong" said the same way after the session: the report's cap steps down where it
changed, the comfortable maximum is drawn from the press, a session cut short is marked
where it stopped (and vented); `history` and `export` show the lowered cap."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from acudevice.cli.run import summary_line
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.plots import schedule_figure
from acudevice.protocol import FirmwareState
from acudevice.report import SessionPicture, session_picture
from acudevice.safety.screening import screen
from acudevice.session.model import SessionResult
from acudevice.store import Journal, Outcome, Sample
from tests.journal_helpers import begin_row

pytestmark = pytest.mark.unit

LIBRARY = ProgramLibrary()
SCHEDULE = screen(
    LIBRARY.get("nausea-relief"), load_device("wristband-p1"), LIBRARY.catalog
).schedule
assert SCHEDULE is not None
RUNNING, VENTING = int(FirmwareState.RUNNING), int(FirmwareState.VENTING)


def acudevice(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACUDEVICE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def journalled(
    journal: Journal,
    outcome: Outcome,
    detail: str,
    *,
    pressed: bool = True,
    lowered: bool = True,
) -> int:
    """nausea-relief, "too strong" at 40 s (felt 12 kPa), intensity 50 % at 100 s, running
    until 150 s and venting after."""
    sid = begin_row(journal, schedule=SCHEDULE.model_dump(mode="json"))
    journal.add_samples(
        sid,
        [
            Sample(
                channel=0,
                t_ms=t,
                measured_level=min(t // 3, 12_000),
                target_level=0,
                state=RUNNING if t <= 150_000 else VENTING,
            )
            for t in range(0, 160_000, 2_500)
        ],
    )
    if pressed:
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=40_000, old_level=12_000, new_level=8_400
        )
    if lowered:
        journal.add_intensity_change(sid, t_ms=100_000, percent=50, level=6_000)
    journal.end_session(sid, outcome=outcome, detail=detail, peak_level=12_050)
    return sid


def picture(journal: Journal, sid: int) -> SessionPicture:
    samples = [s for s in journal.samples(sid) if s.channel == 0]
    return session_picture(
        journal.session(sid), samples, journal.faults(sid), journal.cap_changes(sid)
    )


def test_the_cap_steps_down_where_it_changed_and_the_comfort_line_starts_at_the_press() -> None:
    with Journal() as journal:
        sid = journalled(journal, "estopped", "emergency stop by the user")
        drawn = picture(journal, sid)
    assert drawn.cap.points == ((0.0, 20_000), (40.0, 8_400), (100.0, 6_000))
    assert [drawn.cap.level_at(t) for t in (39.9, 40.0, 99.0, 400.0)] == [
        20_000,
        8_400,
        8_400,
        6_000,
    ]
    assert drawn.cap.label == "cap 20 kPa, lowered to 6 kPa"
    [comfort] = drawn.lines
    assert (comfort.level, comfort.start_s, comfort.style) == (8_400, 40.0, "soft")
    assert (40.0, "too strong at 12 kPa: lowered to 8.4 kPa and remembered") in drawn.events
    assert (100.0, "intensity lowered to 50 % (6 kPa)") in drawn.events
    assert drawn.stop is not None
    assert (drawn.stop.t_s, drawn.stop.vented) == (150.0, True)  # the last RUNNING sample
    assert drawn.stop.label == "emergency stop by the user: vented"


def test_the_figure_draws_the_steps_it_was_given() -> None:
    with Journal() as journal:
        drawn = picture(journal, journalled(journal, "stopped", "stop by the user"))
    figure = schedule_figure(
        drawn.schedule,
        title=drawn.title,
        lines=drawn.lines,
        measured=drawn.measured,
        events=drawn.events,
        steps=(drawn.cap,),
        stop=drawn.stop,
    )
    [axes] = figure.axes
    [cap] = [line for line in axes.get_lines() if line.get_label() == drawn.cap.label]
    assert list(cap.get_ydata()) == [20.0, 8.4, 6.0, 6.0]  # kPa, held to the end
    assert list(cap.get_xdata())[:3] == [0.0, 40.0, 100.0]
    [comfort] = [c for c in axes.collections if c.get_label().startswith("comfort max")]
    [[(x0, y0), (x1, _)]] = comfort.get_segments()  # type: ignore[attr-defined]
    assert (x0, y0) == (40.0, 8.4) and x1 == drawn.schedule.total_ms / 1000
    assert "vented" not in [p.get_label() for p in axes.patches]  # a STOP releases


@pytest.mark.parametrize(
    ("outcome", "detail", "label", "vented"),
    [
        ("stopped", "stop by the user", "stopped by the user: released", False),
        ("stopped", "cancelled (Ctrl-C)", "stopped (cancelled (Ctrl-C)): vented", True),
        ("faulted", "over-pressure: 21.6 kPa", "safety alarm (over-pressure): vented", True),
        ("link-lost", "lost the link", "link lost: the band vents by its watchdog", True),
    ],
)
def test_a_session_cut_short_is_marked_where_it_stopped(
    outcome: Outcome, detail: str, label: str, vented: bool
) -> None:
    with Journal() as journal:
        drawn = picture(journal, journalled(journal, outcome, detail))
    assert drawn.stop is not None
    assert (drawn.stop.t_s, drawn.stop.label, drawn.stop.vented) == (150.0, label, vented)


def test_a_completed_session_unlowered_has_a_flat_cap_and_no_stop() -> None:
    with Journal() as journal:
        sid = journalled(journal, "completed", "all repeats done", pressed=False, lowered=False)
        drawn = picture(journal, sid)
    assert drawn.cap.points == ((0.0, 20_000),) and drawn.cap.label == "cap 20 kPa"
    assert drawn.lines == () and drawn.stop is None


def test_history_export_and_report_say_the_cap_was_lowered(
    isolated_home: Path, tmp_path: Path
) -> None:
    with Journal() as journal:
        pressed = journalled(journal, "stopped", "stop by the user", lowered=False)
        both = journalled(journal, "estopped", "emergency stop by the user")
        plain = journalled(journal, "completed", "done", pressed=False, lowered=False)
        pad = begin_row(journal, actuator="vibration", device_model="vibepad-v1", cap_level=800)
        journal.end_session(pad, outcome="completed", peak_level=450)
    history = acudevice(isolated_home, "history")
    assert history.returncode == 0, history.stderr
    rows = {line.split("│")[1].strip(): line for line in history.stdout.splitlines() if "│" in line}
    assert "12.05 / 8.4 kPa (too strong)" in rows[str(pressed)]
    assert "12.05 / 6 kPa (intensity 50 %)" in rows[str(both)]
    assert "12.05 / 20 kPa" in rows[str(plain)] and "(" not in rows[str(plain)].split("/")[1]
    assert "intensity 0.45 / 0.8" in rows[str(pad)]

    as_json = {
        r["session_id"]: r for r in json.loads(acudevice(isolated_home, "history", "--json").stdout)
    }
    assert (as_json[pressed]["cap_kpa"], as_json[pressed]["final_cap_kpa"]) == (20.0, 8.4)
    assert as_json[pressed]["cap_lowered_by"] == "too-strong"
    assert as_json[plain]["final_cap_kpa"] == 20.0 and as_json[plain]["cap_lowered_by"] is None

    out_dir = tmp_path / "study"
    assert acudevice(isolated_home, "export", "-o", str(out_dir)).returncode == 0
    with (out_dir / "intensity_changes.csv").open(newline="") as f:
        [change] = list(csv.DictReader(f))
    assert change == {
        "session_id": str(both),
        "t_s": "100.0",
        "percent": "50",
        "cap_kpa": "6.0",
        "cap_intensity": "",
    }
    with (out_dir / "comfort_events.csv").open(newline="") as f:
        felt = [(r["old_kpa"], r["new_kpa"]) for r in csv.DictReader(f)]
    assert felt == [("12.0", "8.4"), ("12.0", "8.4")]

    png = tmp_path / "report.png"
    done = acudevice(isolated_home, "report", str(both), "-o", str(png))
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(png.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("cap", "comfort", "said"),
    [
        (8_400, 8_400, "(cap 8.4 kPa, lowered from 20 kPa by too strong)"),
        (6_000, 8_400, "(cap 6 kPa, lowered from 20 kPa by intensity)"),
        (20_000, None, "(cap 20 kPa)"),
    ],
)
def test_the_run_summary_says_what_lowered_the_cap(
    cap: int, comfort: int | None, said: str
) -> None:
    result = SessionResult(
        session_id=3,
        program="nausea-relief",
        outcome="stopped",
        detail="stop by the user",
        peak_level=12_050,
        cap_level=cap,
        actuator="pressure",
        repeats_done=1,
        repeats_planned=4,
        start_skew_ms=None,
        faults=(),
        comfort_level=comfort,
        screened_cap_level=20_000,
    )
    line = summary_line(result)
    assert line == f"session 3: stopped — stop by the user; 1/4 repeats, peak 12.05 kPa {said}"
