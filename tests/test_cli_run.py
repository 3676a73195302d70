"""`acudevice run`, `history` and `report` as a person meets them, in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acudevice.store import Journal

pytestmark = pytest.mark.sim


def acudevice(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACUDEVICE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_run_json_summary_then_history_and_report(isolated_home: Path, tmp_path: Path) -> None:
    done = acudevice(
        isolated_home,
        "run",
        "nausea-relief",
        "--device",
        "sim://?speed=max",
        "--json",
        "--rate-before",
        "7",
        "--rate-after",
        "3",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["outcome"] == "completed" and summary["repeats_done"] == 4
    assert summary["cap_kpa"] == 20.0 and 11 < summary["peak_measured_kpa"] < 13.1
    history = acudevice(isolated_home, "history")
    assert "nausea-relief" in history.stdout and "7 → 3" in history.stdout
    png = tmp_path / "report.png"
    report = acudevice(isolated_home, "report", str(summary["session_id"]), "-o", str(png))
    assert report.returncode == 0 and png.read_bytes()[:4] == b"\x89PNG"


def test_plain_progress_without_a_terminal_and_a_simulator_banner(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "run", "nausea-relief", "--device", "sim://?speed=max")
    assert done.returncode == 0
    assert "SIMULATOR" in done.stderr
    assert "repeat 4/4 release" in done.stdout and "completed" in done.stdout


def test_unknown_scheme_is_a_clear_error(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "run", "nausea-relief", "--device", "bogus://x")
    assert done.returncode == 2 and "unknown scheme 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_port_is_a_clear_error(isolated_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        done = acudevice(
            isolated_home, "run", "nausea-relief", "--device", f"tcp://127.0.0.1:{port}"
        )
    assert done.returncode == 2 and f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_program_unsuited_to_the_actuator_is_refused(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "run", "vibration-nausea", "--device", "sim://?speed=max")
    assert done.returncode == 2 and "actuator-mismatch" in done.stdout
    with Journal(isolated_home / "data" / "journal.sqlite3") as journal:
        assert journal.sessions() == [], "nothing recorded for a refused program"


def test_bad_rating_is_refused_before_anything_moves(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "run", "nausea-relief", "--rate-before", "11")
    assert done.returncode == 2 and "--rate-before" in done.stderr


def test_sigkilled_run_leaves_an_interrupted_row_and_an_intact_journal(isolated_home: Path) -> None:
    first = acudevice(isolated_home, "run", "sleep", "--device", "sim://?speed=max", "--json")
    assert first.returncode == 0
    env = {**os.environ, "ACUDEVICE_HOME": str(isolated_home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acudevice.cli",
            "run",
            "nausea-relief",
            "--device",
            "sim://?speed=5",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = isolated_home / "data" / "journal.sqlite3"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Journal(db) as journal:
            rows = journal.sessions()
            if len(rows) == 2 and journal.samples(rows[0].id):
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with Journal(db) as journal:
        assert journal.integrity_ok()
        newest, earlier = journal.sessions()
        assert newest.outcome == "interrupted" and earlier.outcome == "completed"
