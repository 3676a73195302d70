"""What a new user meets on the headline paths: docs that link, a profile to start from,
output that reads right piped or on a terminal, help without type noise, and plots."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acudevice.cli.programs import reference_lines
from acudevice.plan.library import ProgramLibrary, load_device
from acudevice.plots import schedule_figure
from acudevice.safety.profile import HealthProfile, load_profile
from acudevice.safety.screening import screen
from acudevice.store import Journal
from tests.journal_helpers import begin_row
from tests.test_cli_run import acudevice

pytestmark = pytest.mark.sim

ROOT = Path(__file__).resolve().parent.parent
READING = re.compile(r"ended at (-?\d+\.\d+) kPa$")


def test_readme_and_quickstart_link_the_ble_guide() -> None:
    for doc in ("README.md", "docs/quickstart.md"):
        text = (ROOT / doc).read_text()
        assert re.search(r"\]\((docs/)?ble\.md\)", text), f"{doc} does not link docs/ble.md"


def test_profile_init_writes_a_profile_that_check_accepts(
    isolated_home: Path, tmp_path: Path
) -> None:
    me = tmp_path / "me.toml"
    done = acudevice(isolated_home, "profile", "init", str(me))
    assert done.returncode == 0, done.stderr
    assert load_profile(me) == HealthProfile(), "the template starts at every default"
    checked = acudevice(isolated_home, "check", "nausea-relief", "--profile", str(me))
    assert checked.returncode == 0 and checked.stdout.startswith("OK"), checked.stderr
    me.write_text(me.read_text().replace("blood_thinners = false", "blood_thinners = true"))
    assert load_profile(me).blood_thinners, "a user edits a line and it takes effect"
    again = acudevice(isolated_home, "profile", "init", str(me))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {me}: already exists; edit it, or pass --force"
    assert load_profile(me).blood_thinners, "nothing overwritten"


def test_help_shows_no_type_noise() -> None:
    env = {**os.environ, "COLUMNS": "120"}
    for command in (["run"], ["conformance"], ["programs", "plot"], ["export"]):
        done = subprocess.run(
            [sys.executable, "-m", "acudevice.cli", *command, "--help"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert "<bool>" not in done.stdout and "<str>" not in done.stdout
        assert "{" not in done.stdout.splitlines()[1], done.stdout.splitlines()[1]
    run_help = subprocess.run(
        [sys.executable, "-m", "acudevice.cli", "run", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "Usage: acudevice run [OPTIONS] [PROGRAM]" in run_help  # or --scheduled
    assert re.search(r"--device\s+URL\s", run_help)
    (pregnant,) = [line for line in run_help.splitlines() if "--pregnant" in line]
    assert pregnant.replace("--pregnant", "").strip(" │") == "", "a plain flag has no type"


def test_piped_run_prints_whole_lines_and_end_of_phase_readings(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "run", "nausea-relief", "--device", "sim://?speed=max")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    peaks = [re.search(r"peak ([\d.]+) kPa \(cap 20 kPa\)$", line) for line in lines]
    (peak,) = [float(m.group(1)) for m in peaks if m]
    assert 12.0 <= peak <= 12.0 + 1.0, "the 12 kPa plateau, within the sensor tolerance"
    phases = [line for line in lines if "ended at" in line]
    assert len(phases) == 12, "one line per phase, the last one too"
    readings = {}
    for line in phases:
        match = READING.search(line)
        assert match, f"two decimals, kPa: {line!r}"
        readings.setdefault(line.split()[5], []).append(float(match.group(1)))
    assert all(v >= 0 for vs in readings.values() for v in vs), "never a negative pressure"
    assert all(11.0 < v < 13.0 for v in readings["ramp"] + readings["hold"]), readings
    assert all(v < 2.0 for v in readings["release"]), "a release ends vented"
    assert "simulated band, not hardware" in done.stderr
    assert "pass --device" not in done.stderr, "a --device was passed"


def test_history_names_the_device_and_explains_the_symptom_column(isolated_home: Path) -> None:
    with Journal() as journal:
        sid = begin_row(journal, devices=["tcp://127.0.0.1:7000"], rating_before=6)
        journal.end_session(sid, outcome="completed", peak_level=12_000, repeats_done=4)
    done = acudevice(isolated_home, "history")
    assert done.returncode == 0, done.stderr
    assert "device" in done.stdout and "tcp://127.0.0.1:7000" in done.stdout
    assert "6 → -" in done.stdout
    assert "0 (none) to 10 (worst)" in done.stdout


def _read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    seen = b""
    while wanted not in seen:
        assert time.monotonic() < deadline, seen[-400:]
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_an_interactive_session_asks_for_the_rating_afterwards(isolated_home: Path) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "ACUDEVICE_HOME": str(isolated_home), "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "acudevice.cli", "run", "sleep", "--device", "sim://?speed=max"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        close_fds=True,
    )
    os.close(terminal)
    try:
        _read_until(controller, b"0 (none) to 10 (worst)?", time.monotonic() + 60)
        os.write(controller, b"3\n")
        _read_until(controller, b"acudevice report 1 -o session-1.png", time.monotonic() + 20)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(controller)
    with Journal() as journal:
        (session,) = journal.sessions()
    assert session.rating_after == 3


def test_the_plan_plot_fills_its_axes_and_keeps_the_legend_off_the_lines() -> None:
    library = ProgramLibrary()
    program = library.get("nausea-relief")
    device = load_device("wristband-p1")
    verdict = screen(program, device, library.catalog, HealthProfile())
    assert verdict.schedule is not None and verdict.limits is not None
    lines = reference_lines(verdict.limits, verdict.schedule, HealthProfile())
    fig = schedule_figure(verdict.schedule, title="t", lines=lines)
    (ax,) = fig.axes
    fig.canvas.draw()
    top = ax.get_ylim()[1]
    assert 20 < top < 25, "the cap (20 kPa) is the highest line drawn: not 42 kPa"
    styles = {line.get_label(): (line.get_color(), line.get_linestyle()) for line in ax.get_lines()}
    assert not any("ceiling" in label for label in styles), "40 kPa is off the chart"
    assert any("above the chart: absolute ceiling 40 kPa" in t.get_text() for t in ax.texts)
    soft = [label for label in styles if label.startswith("10 kPa")]
    assert soft == [
        "10 kPa: the cap if a profile lists blood thinners, a bleeding disorder or fragile skin"
    ]
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 < ax.get_window_extent().y0, "the legend sits below the plot"


def test_the_session_report_tells_planned_from_measured() -> None:
    library = ProgramLibrary()
    verdict = screen(
        library.get("nausea-relief"), load_device("wristband-p1"), library.catalog, HealthProfile()
    )
    assert verdict.schedule is not None
    measured = [(t / 10, 11_900.0) for t in range(0, 4800, 5)]
    fig = schedule_figure(verdict.schedule, title="t", measured=measured)
    (ax,) = fig.axes
    planned, taken = ax.get_lines()[:2]
    assert planned.get_label() == "planned" and taken.get_label() == "measured"
    assert planned.get_linewidth() >= 3 * taken.get_linewidth(), "a band under a line"
    assert planned.get_color() != taken.get_color()
