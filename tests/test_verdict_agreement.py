"""`check` and `run` give the same verdict, remembered comfort maxima included; and a "too
strong" records the level felt when it was pressed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.store import Journal
from tests.journal_helpers import begin_row
from tests.session_helpers import Watch, session, simulated

pytestmark = pytest.mark.sim


def remember_comfort(point: str, level: int) -> None:
    """What an earlier session's "too strong" leaves in the user's journal."""
    with Journal() as journal:
        sid = begin_row(journal)
        journal.add_comfort_event(
            sid, point=point, actuator="pressure", t_ms=0, old_level=12_000, new_level=level
        )
        journal.end_session(sid, outcome="stopped")


def test_check_and_run_agree_after_too_strong_lowered_the_comfort_maximum(
    isolated_home: Path,
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["check", "nausea-relief"]).exit_code == 0
    remember_comfort("PC6", 8_400)
    checked = runner.invoke(app, ["check", "nausea-relief"])
    assert checked.exit_code == 3, checked.output
    assert "NEEDS-CONFIRMATION" in checked.output and "comfortable maximum" in checked.output
    ran = runner.invoke(app, ["run", "nausea-relief", "--device", "sim://?speed=max"])
    assert ran.exit_code == 2 and "NEEDS-CONFIRMATION" in ran.output, ran.output
    confirmed = runner.invoke(app, ["check", "nausea-relief", "--confirm", "I know", "--json"])
    assert confirmed.exit_code == 0 and '"comfort-max"' in confirmed.output


def test_a_remembered_maximum_for_another_point_changes_nothing(isolated_home: Path) -> None:
    remember_comfort("LI4", 3_000)
    assert CliRunner().invoke(app, ["check", "nausea-relief"]).exit_code == 0


async def test_too_strong_in_a_release_records_the_level_felt_then(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        async with simulated("sim://?speed=20") as sim:
            watch = Watch()
            runner = session(sim, journal, watch)
            task = asyncio.create_task(runner.run())
            await watch.until(
                lambda: any(p == "release" and m < 8_000 for _, p, m, _ in watch.views)
            )
            felt_now = watch.views[-1][2]
            runner.too_strong()
            await watch.until(lambda: any("too strong" in n for n in watch.notes))
            runner.stop()
            result = await task
        [event] = journal.comfort_events(result.session_id)
    assert event.old_level is not None and abs(event.old_level - felt_now) < 1_000, event
    assert event.old_level < 9_000  # not the 12 kPa plateau of the hold before
    assert event.t_ms is not None and 60_000 < event.t_ms < 130_000  # session time, in repeat 1
