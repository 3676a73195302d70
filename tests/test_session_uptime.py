"""Session time comes from the session, not from how long the band has been switched on.

A real band has usually been on for a while when a host connects, and its 32-bit millisecond
counter wraps after 49.7 days; `uptime_s` boots the simulated band that late.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from acudevice.cli.live import render
from acudevice.cli.main import app
from acudevice.plan.schedule import Schedule
from acudevice.session.runner import Session
from acudevice.session.view import SessionView
from acudevice.store import Journal
from tests.ble_helpers import ble_rig
from tests.plan_helpers import program
from tests.sim_server import serve

HOURS = 3 * 3600.0
NEAR_WRAP = 0x1_0000_0000 / 1000 - 45  # the counter wraps 45 s into the session
SHORT = program(repeats=2)


class Views:
    """Every (elapsed, phase) published, and the live view's text when the ramp first shows."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.first_ramp_text = ""

    def __call__(self, view: SessionView) -> None:
        self.seen.append((view.elapsed_ms, view.phase))
        if view.phase == "ramp" and not self.first_ramp_text:
            console = Console(file=io.StringIO(), width=120, record=True)
            console.print(render(view))
            self.first_ramp_text = console.export_text()


def assert_session_time(
    journal: Journal, session_id: int | None, views: Views, *, every_sample: bool = True
) -> None:
    """Samples span the plan from 0; over a wire at speed=max the simulator thins telemetry."""
    assert session_id is not None
    record = journal.session(session_id)
    total = Schedule.model_validate(record.schedule).total_ms
    samples = journal.samples(session_id)
    times = [s.t_ms for s in samples]
    assert times == sorted(times)
    assert times[0] < 1_000, times[:3]  # starts at the session's start, not at the uptime
    # Over a wire at speed=max the simulator may thin away most samples of a busy second half;
    # what matters there is that no sample carries the band's uptime.
    last_at_least = total - 2_000 if every_sample else 0
    assert last_at_least < times[-1] <= total + 1_000, (times[-1], total)
    ramp = [elapsed for elapsed, phase in views.seen if phase == "ramp"]
    assert ramp and ramp[0] < 1_000, ramp[:3]  # the live view starts at the beginning
    shown = re.search(r"time left\s+(\d+) min (\d+) s", views.first_ramp_text)
    assert shown is not None, views.first_ramp_text
    left_s = int(shown[1]) * 60 + int(shown[2])
    assert total / 1000 - 2 <= left_s <= total / 1000, views.first_ramp_text


@pytest.mark.sim
@pytest.mark.parametrize("uptime", [HOURS, NEAR_WRAP], ids=["hours", "near-wrap"])
async def test_in_process_band_switched_on_long_ago(tmp_path: Path, uptime: float) -> None:
    views = Views()
    with Journal(tmp_path / "j.sqlite3") as journal:
        url = f"sim://?speed=max&seed=2&uptime_s={uptime}"
        result = await _followed(Session(SHORT, [url], journal=journal), views).run()
        assert result.outcome == "completed"
        assert_session_time(journal, result.session_id, views)


@pytest.mark.wire
@pytest.mark.parametrize("where", ["--pty", "--tcp"])
@pytest.mark.parametrize("uptime", [HOURS, NEAR_WRAP], ids=["hours", "near-wrap"])
async def test_band_over_a_wire_switched_on_long_ago(
    tmp_path: Path, where: str, uptime: float
) -> None:
    flags = [where] + (["0"] if where == "--tcp" else [])
    views = Views()
    # Speed 200, not max: at speed=max the simulator thins telemetry to one sample per 20 ms of
    # wall time, and on a busy machine a whole ramp could pass unseen. 200x still crosses the
    # 32-bit wrap (45 s into the session) in a quarter of a second.
    with (
        serve(*flags, "--speed", "200", "--uptime", str(uptime)) as url,
        Journal(tmp_path / "j.sqlite3") as journal,
    ):
        result = await _followed(Session(SHORT, [url], journal=journal), views).run()
        assert result.outcome == "completed", result
        assert_session_time(journal, result.session_id, views, every_sample=False)


@pytest.mark.sim
def test_report_draws_the_measured_line_of_a_band_on_for_hours(isolated_home: Path) -> None:
    url = f"sim://?speed=max&uptime_s={NEAR_WRAP}"
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "nausea-relief", "--device", url, "--json"])
    assert ran.exit_code == 0, ran.output
    out = isolated_home / "report.svg"
    made = runner.invoke(app, ["report", "last", "-o", str(out)])
    assert made.exit_code == 0, made.output
    svg = out.read_text()
    assert "measured" in svg
    with Journal() as journal:
        [record] = journal.sessions()
        samples = journal.samples(record.id)
    assert samples[0].t_ms < 1_000 and samples[-1].t_ms > 400_000


@pytest.mark.wire
async def test_band_over_ble_switched_on_near_the_wrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ble_rig(f"sim://?speed=max&seed=7&uptime_s={NEAR_WRAP}") as rig:
        await rig.pair(alias="left-wrist")
        monkeypatch.setenv("ACUDEVICE_BLE_HCI", rig.hci)
        views = Views()
        with Journal(tmp_path / "j.sqlite3") as journal:
            result = await _followed(Session(SHORT, ["left-wrist"], journal=journal), views).run()
            assert result.outcome == "completed", result
            assert_session_time(journal, result.session_id, views, every_sample=False)


def _followed(session: Session, views: Views) -> Session:
    SessionView.follow(session, views)
    return session
