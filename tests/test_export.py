"""`acudevice export` and `history --json`: a study's data leaves the journal whole.

Round trip: what the files say, read back with the csv and json modules and converted from
the units in their column names, equals what the journal holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acudevice.store import Journal, Sample
from tests.journal_helpers import begin_row

pytestmark = pytest.mark.unit


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


def _fill(journal: Journal) -> tuple[int, int]:
    """A pressure session with a comfort event and a fault, and a vibration one."""
    pressure = begin_row(
        journal, devices=["sim://?seed=1", "serial:///dev/ttyUSB0"], rating_before=7
    )
    journal.add_samples(
        pressure,
        [
            Sample(channel=0, t_ms=t, measured_level=-35 + t, target_level=t, state=2)
            for t in range(0, 1_000, 100)
        ],
    )
    journal.add_comfort_event(
        pressure, point="PC6", actuator="pressure", t_ms=450, old_level=12_000, new_level=9_000
    )
    journal.add_fault(pressure, channel=0, t_ms=900, code="over-pressure", message="21.6 kPa")
    journal.end_session(pressure, outcome="faulted", detail="over-pressure", peak_level=21_650)
    journal.rate_after(pressure, 3)
    vibration = begin_row(
        journal,
        program="vibration-calm",
        devices=["sim://?model=vibepad-v1"],
        device_model="vibepad-v1",
        actuator="vibration",
        cap_level=800,
        repeats_planned=1,
    )
    journal.add_samples(
        vibration, [Sample(channel=0, t_ms=200, measured_level=433, target_level=450, state=2)]
    )
    journal.end_session(vibration, outcome="completed", peak_level=450, repeats_done=1)
    return pressure, vibration


def _kpa(text: str) -> int | None:
    return None if text == "" else round(float(text) * 1000)


def test_csv_export_round_trips_sessions_samples_comfort_and_faults(
    isolated_home: Path, tmp_path: Path
) -> None:
    with Journal() as journal:
        pressure, vibration = _fill(journal)
        samples = journal.samples(pressure)
    out_dir = tmp_path / "study" / "export"
    done = acudevice(isolated_home, "export", "-o", str(out_dir))
    assert done.returncode == 0, done.stderr
    assert "2 sessions, 11 samples, 1 comfort events, 1 faults" in done.stdout
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "comfort_events.csv",
        "faults.csv",
        "intensity_changes.csv",
        "samples.csv",
        "sessions.csv",
    ]

    def read(name: str) -> list[dict[str, str]]:
        with (out_dir / f"{name}.csv").open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    sessions = read("sessions")
    assert [int(r["session_id"]) for r in sessions] == [pressure, vibration]
    p, v = sessions
    assert p["program"] == "nausea-relief" and p["outcome"] == "faulted"
    assert p["devices"] == "sim://?seed=1 serial:///dev/ttyUSB0"
    assert (_kpa(p["peak_kpa"]), _kpa(p["cap_kpa"])) == (21_650, 20_000)
    assert p["peak_intensity"] == p["cap_intensity"] == ""
    assert (p["symptom_before_0_10"], p["symptom_after_0_10"]) == ("7", "3")
    assert p["comfort_events"] == "1"
    assert (v["peak_intensity"], v["cap_intensity"], v["peak_kpa"]) == ("0.45", "0.8", "")
    assert v["symptom_before_0_10"] == ""
    back = [
        (int(r["channel"]), round(float(r["t_s"]) * 1000), _kpa(r["measured_kpa"]))
        for r in read("samples")
        if int(r["session_id"]) == pressure
    ]
    assert back == [(s.channel, s.t_ms, s.measured_level) for s in samples]
    assert {r["state"] for r in read("samples")} == {"RUNNING"}
    (comfort,) = read("comfort_events")
    assert (comfort["point"], comfort["t_s"], _kpa(comfort["new_kpa"])) == ("PC6", "0.45", 9_000)
    (fault,) = read("faults")
    assert (fault["code"], fault["t_s"], fault["message"]) == ("over-pressure", "0.9", "21.6 kPa")


def test_json_export_and_since_keep_only_later_sessions(
    isolated_home: Path, tmp_path: Path
) -> None:
    with Journal() as journal:
        _fill(journal)
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    later = tmp_path / "later"
    done = acudevice(
        isolated_home, "export", "--format", "json", "--since", tomorrow, "-o", str(later)
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((later / "sessions.json").read_text()) == []
    today = dt.date.today().isoformat()
    out_dir = tmp_path / "json"
    done = acudevice(
        isolated_home, "export", "--format", "json", "--since", today, "-o", str(out_dir)
    )
    assert done.returncode == 0, done.stderr
    sessions = json.loads((out_dir / "sessions.json").read_text())
    assert [s["program"] for s in sessions] == ["nausea-relief", "vibration-calm"]
    assert sessions[0]["peak_kpa"] == 21.65 and sessions[0]["peak_intensity"] is None
    samples = json.loads((out_dir / "samples.json").read_text())
    assert samples[0] == {
        "session_id": sessions[0]["session_id"],
        "channel": 0,
        "t_s": 0.0,
        "measured_kpa": -0.035,
        "target_kpa": 0.0,
        "measured_intensity": None,
        "target_intensity": None,
        "state": "RUNNING",
    }


def test_history_json_lists_the_sessions_newest_first(isolated_home: Path) -> None:
    with Journal() as journal:
        pressure, vibration = _fill(journal)
    done = acudevice(isolated_home, "history", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["session_id"] for r in rows] == [vibration, pressure]
    assert rows[1]["devices"] == "sim://?seed=1 serial:///dev/ttyUSB0"
    assert rows[1]["started_at_utc"].startswith(str(dt.datetime.now(dt.UTC).year))
    assert rows[1]["cap_kpa"] == 20.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "last tuesday"), "--since: 'last tuesday' is not a date"),
        (("--format", "xlsx"), "xlsx"),
    ],
)
def test_bad_export_input_is_one_line_and_exit_2(
    isolated_home: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = acudevice(isolated_home, "export", "-o", str(tmp_path / "never"), *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "never").exists()


def test_export_into_a_file_is_refused_and_leaves_it_alone(
    isolated_home: Path, tmp_path: Path
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    done = acudevice(isolated_home, "export", "-o", str(target))
    assert done.returncode == 2 and "exists and is not a directory" in done.stderr
    assert target.read_text() == "mine"
