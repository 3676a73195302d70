"""`acudevice comfort`: the remembered comfortable maxima a person can see, set and reset.

Through the command line as a user types it, in a fresh ACUDEVICE_HOME. A maximum lowered
by "too strong" is raised only by an explicit `comfort set` or `comfort reset`, whose reason
is logged with who and when.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acudevice.cli.main import app
from acudevice.store import SCHEMA_VERSION, Journal, database
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


def pressed_too_strong(level: int, participant: str | None = None) -> int:
    """What a "too strong" at P6 leaves in the journal; the session's id."""
    with Journal() as journal:
        sid = begin_row(journal, participant=participant)
        journal.add_comfort_event(
            sid, point="PC6", actuator="pressure", t_ms=40_000, old_level=12_000, new_level=level
        )
        journal.end_session(sid, outcome="stopped")
    return sid


def test_list_set_reset_and_the_log(isolated_home: Path) -> None:
    empty = acudevice(isolated_home, "comfort")
    assert empty.returncode == 0 and "No comfortable maximum remembered" in empty.stdout
    sid = pressed_too_strong(8_400)

    listed = acudevice(isolated_home, "comfort", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["point"], row["actuator"], row["maximum_kpa"]) == ("PC6", "pressure", 8.4)
    assert row["last_change"] == f"too strong at 12 kPa: lowered to 8.4 kPa in session {sid}"
    table = acudevice(isolated_home, "comfort")
    assert "PC6" in table.stdout and "Neiguan" in table.stdout and "8.4 kPa" in table.stdout

    # P6 is an alias of PC6: raised by hand, with a reason.
    raised = acudevice(
        isolated_home, "comfort", "set", "P6", "10", "--reason", "physio: 8.4 was a bad day"
    )
    assert raised.returncode == 0, raised.stderr
    assert "PC6: comfortable maximum 8.4 kPa → 10 kPa" in raised.stdout
    assert "raised" in raised.stdout
    with Journal() as journal:
        assert journal.comfort_max("pressure") == {"PC6": 10_000}

    pad = acudevice(
        isolated_home, "comfort", "set", "PC6", "0.25", "--vibration", "--reason", "pad buzzes"
    )
    assert pad.returncode == 0, pad.stderr
    with Journal() as journal:
        assert journal.comfort_max("vibration") == {"PC6": 250}
        assert journal.comfort_max("pressure") == {"PC6": 10_000}  # each actuator its own

    forgot = acudevice(isolated_home, "comfort", "reset", "pc6", "--reason", "cleared by my GP")
    assert forgot.returncode == 0 and "forgot the comfortable maximum 10 kPa" in forgot.stdout
    with Journal() as journal:
        assert journal.comfort_max("pressure") == {}
    again = acudevice(isolated_home, "comfort", "reset", "PC6", "--reason", "twice")
    assert again.returncode == 0 and "nothing changed" in again.stdout

    logged = acudevice(isolated_home, "comfort", "log", "--json")
    assert logged.returncode == 0, logged.stderr
    changes = json.loads(logged.stdout)
    assert [(c["kind"], c["actuator"], c["old_level"], c["new_level"]) for c in changes] == [
        ("too-strong", "pressure", None, 8_400),
        ("set", "pressure", 8_400, 10_000),
        ("set", "vibration", None, 250),
        ("reset", "pressure", 10_000, None),
    ]
    assert [c["reason"] for c in changes] == [
        None,
        "physio: 8.4 was a bad day",
        "pad buzzes",
        "cleared by my GP",
    ]
    assert all(c["who"] for c in changes[1:])  # the login that typed it
    assert changes[0]["felt_level"] == 12_000 and changes[0]["session_id"] == sid
    table = acudevice(isolated_home, "comfort", "log")
    assert "cleared by my GP" in table.stdout and "8.4 kPa → 10 kPa" in table.stdout


def test_participants_have_their_own_maxima(isolated_home: Path) -> None:
    pressed_too_strong(7_000, participant="P017")
    mine = acudevice(isolated_home, "comfort", "list", "--json")
    assert json.loads(mine.stdout) == []
    theirs = acudevice(isolated_home, "comfort", "list", "--participant", "P017", "--json")
    assert [r["maximum_kpa"] for r in json.loads(theirs.stdout)] == [7.0]
    done = acudevice(
        isolated_home, "comfort", "set", "PC6", "6", "--participant", "P017", "--reason", "visit 2"
    )
    assert done.returncode == 0, done.stderr
    with Journal() as journal:
        assert journal.comfort_max("pressure", participant="P017") == {"PC6": 6_000}
        assert journal.comfort_max("pressure") == {}
        journal.withdraw("P017")  # their log goes with them
        assert journal.comfort_memory.log(participant="P017") == []
    refused = acudevice(
        isolated_home, "comfort", "set", "PC6", "6", "--participant", "P017", "--reason", "x"
    )
    assert refused.returncode == 2 and "has withdrawn" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "PC6", "nan"), "LEVEL: got nan, not a number; must be more than 0 kPa"),
        (("set", "PC6", "inf"), "LEVEL: got inf, not a finite number"),
        (("set", "PC6", "45"), "LEVEL: got 45 kPa; must be more than 0 kPa and at most 40 kPa"),
        (("set", "PC6", "0"), "LEVEL: got 0 kPa; must be more than 0 kPa"),
        (("set", "PC6", "1.5", "--vibration"), "LEVEL: got 1.5 (intensity 0-1); must be more"),
        (("set", "PC6", "0.0001"), "the smallest maximum is 0.001 kPa"),
        (("set", "XY1", "5"), "unknown point 'XY1'; known points: BL60, BL67, GB21, HT7, LI4"),
        (("reset", "XY1"), "unknown point 'XY1'; known points:"),
        (("set", "PC6", "5", "--participant", "Jane Doe"), "--participant: 'Jane Doe' is not"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    isolated_home: Path, args: tuple[str, ...], message: str
) -> None:
    pressed_too_strong(8_400)
    done = CliRunner().invoke(app, ["comfort", *args, "--reason", "because"])
    assert done.exit_code == 2, done.stdout
    assert message in done.stderr, done.stderr
    assert isinstance(done.exception, SystemExit)  # a clean exit 2, no error escaping
    assert len(done.stderr.strip().splitlines()) == 1
    with Journal() as journal:
        assert journal.comfort_max("pressure") == {"PC6": 8_400}
        assert [c.kind for c in journal.comfort_memory.log()] == ["too-strong"]


@pytest.mark.parametrize("reason", ["", "   ", "two\nlines"])
def test_a_change_needs_a_reason(isolated_home: Path, reason: str) -> None:
    pressed_too_strong(8_400)
    runner = CliRunner()
    done = runner.invoke(app, ["comfort", "set", "PC6", "12", "--reason", reason])
    assert done.exit_code == 2 and "--reason" in done.stderr
    missing = runner.invoke(app, ["comfort", "reset", "PC6"])
    assert missing.exit_code == 2 and "--reason" in missing.stderr
    with Journal() as journal:
        assert journal.comfort_max("pressure") == {"PC6": 8_400}


def test_too_strong_never_raises_a_maximum_set_lower_by_hand(isolated_home: Path) -> None:
    done = acudevice(isolated_home, "comfort", "set", "PC6", "6", "--reason", "start low")
    assert done.returncode == 0, done.stderr
    pressed_too_strong(8_400)  # a later press at a higher level
    with Journal() as journal:
        assert journal.comfort_max("pressure") == {"PC6": 6_000}


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
def test_the_log_works_in_a_journal_of_every_earlier_version(start: int, tmp_path: Path) -> None:
    """A maximum remembered by an older acudevice is listed, set and logged after upgrading."""
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for step in database.MIGRATIONS[:start]:
            step(db)
        db.execute(f"PRAGMA user_version={start}")
        db.execute(
            "INSERT INTO comfort_max (point, actuator, level, updated_at)"
            " VALUES ('PC6', 'pressure', 8000, 1.7e9)"
        )
    with Journal(path) as journal:
        [kept] = journal.comfort_memory.maxima()
        assert (kept.point, kept.level) == ("PC6", 8_000)
        change = journal.comfort_memory.set(
            "PC6", "pressure", 9_000, reason="after the upgrade", who="tester"
        )
        assert (change.old_level, change.new_level) == (8_000, 9_000)
        assert journal.comfort_max("pressure") == {"PC6": 9_000}
        [logged] = journal.comfort_memory.log()
        assert (logged.kind, logged.reason, logged.who) == ("set", "after the upgrade", "tester")
