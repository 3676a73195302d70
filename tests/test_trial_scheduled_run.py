"""A trial on a single host: `study fetch` keeps the participant's protocol, `run --scheduled`
runs the label's program without naming the arm, the live view and `history` show the label,
and a fault is shown as always; a withdrawal fetched deletes the schedule."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from acudevice.bridge.topics import protocol_topic, withdrawn_topic
from acudevice.cli.live import PlainProgress, render
from acudevice.cli.main import app
from acudevice.session.runner import Session
from acudevice.session.view import SessionView
from acudevice.store import Journal
from acudevice.study.withdrawal import notice
from tests.mqtt_broker import Broker
from tests.session_helpers import connector, simulated
from tests.trial_helpers import SECRETS, STUDY, deliver, protocol

TODAY = dt.datetime.now(dt.UTC).date()


def acudevice(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ACUDEVICE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "acudevice.cli", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def blind(done: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr, (secret, done.stdout, done.stderr)


def one_line_error(done: subprocess.CompletedProcess[str] | Result, expected: str) -> None:
    code = done.returncode if isinstance(done, subprocess.CompletedProcess) else done.exit_code
    assert code == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], done.stderr


async def in_process(*args: str) -> Result:
    """A command as `acudevice` runs it, without starting Python again (bad input only)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


@pytest.mark.mqtt
async def test_fetch_then_run_scheduled_shows_the_label_and_never_the_arm(
    broker: Broker, isolated_home: Path
) -> None:
    await deliver(broker, protocol("sham", "P1", first_day=TODAY))
    fetch = ("study", "fetch", "P1", "--broker", broker.url)
    fetched = await asyncio.to_thread(acudevice, isolated_home, *fetch)
    assert fetched.returncode == 0, fetched.stderr
    assert "P1: 'Study programme' kept for `acudevice run --scheduled`" in fetched.stdout
    blind(fetched)

    run = ("run", "--scheduled", "--device", "sim://?speed=max")
    done = await asyncio.to_thread(acudevice, isolated_home, *run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("P1: Study programme — "), done.stdout  # and the window
    assert "repeat 4/4 release" in done.stdout and ": completed — " in done.stdout
    blind(done)
    with Journal() as journal:
        sessions = journal.sessions(5)
    assert [(s.program, s.participant) for s in sessions] == [("study-programme", "P1")]

    history = await asyncio.to_thread(acudevice, isolated_home, "history")
    assert "Study programme" in history.stdout
    blind(history)

    # Refused for this person: the ways forward are gentler flags, never another program
    # (another could be the other arm); safety says why, as always.
    refused = await asyncio.to_thread(acudevice, isolated_home, *run, "--cap-kpa", "2")
    assert refused.returncode == 2 and "REFUSED: study-programme" in refused.stdout
    blind(refused)
    assert "acudevice run " not in refused.stdout

    # The participant withdraws: fetching again deletes their schedule and sessions here.
    await broker.pub(protocol_topic("acudevice", "P1"), b"", retain=True)
    await broker.pub(withdrawn_topic("acudevice", "P1"), notice("P1"), retain=True)
    gone = await asyncio.to_thread(acudevice, isolated_home, *fetch)
    assert gone.returncode == 0 and "P1 has withdrawn from the study" in gone.stdout
    assert "1 session(s) were deleted" in gone.stdout  # a refused one is not journalled
    after = await asyncio.to_thread(acudevice, isolated_home, *run)
    one_line_error(after, "no study protocol on this host")


@pytest.mark.mqtt
async def test_run_scheduled_and_fetch_refuse_in_one_line(
    broker: Broker, isolated_home: Path
) -> None:
    nothing = await in_process("study", "fetch", "P9", "--broker", broker.url, "--wait", "0.5")
    one_line_error(nothing, "no study protocol for P9")
    one_line_error(await in_process("run"), "give a program")
    both = await in_process("run", "sleep", "--scheduled")
    one_line_error(both, "give a program, or --scheduled (not both)")
    for who in ("P1", "P2"):
        await deliver(broker, protocol("active", who, first_day=TODAY))
        fetched = await in_process("study", "fetch", who, "--broker", broker.url)
        assert fetched.exit_code == 0, fetched.output
    whose = await in_process("run", "--scheduled")
    one_line_error(whose, "protocols for P1, P2 on this host: say whose session")
    unknown = await in_process("run", "--scheduled", "--participant", "P3")
    one_line_error(unknown, "no study protocol for P3 on this host")


@pytest.mark.sim
@pytest.mark.looptime
@pytest.mark.parametrize("fault", [None, "stuck-pump:20000"], ids=["plain", "stuck-pump"])
async def test_the_live_view_titles_a_sham_session_with_its_label_and_shows_a_fault(
    fault: str | None, tmp_path: Path
) -> None:
    program = STUDY.participant_program("sham")
    url = "sim://?speed=max&seed=2" + (f"&fault={fault}" if fault else "")
    lines: list[str] = []
    screens: list[str] = []
    console = Console(width=120, record=True, file=io.StringIO())
    with Journal(tmp_path / "journal.sqlite3") as journal:
        async with simulated(url) as sim:
            session = Session(program, ["sim://"], journal=journal, connect=connector(sim))
            progress = PlainProgress(lines.append)
            SessionView.follow(session, progress)

            def draw(view: SessionView) -> None:
                console.print(render(view))
                screens.append(console.export_text(clear=True))

            SessionView.follow(session, draw)
            result = await session.run()
            progress.finish()
    assert screens and all("Study programme" in screen for screen in screens[1:])
    text = "\n".join(screens + lines)
    for secret in SECRETS:
        assert secret not in text, secret
    if fault is None:
        assert result.outcome == "completed"
    else:
        assert result.outcome == "faulted"
        assert "fault device-fault" in screens[-1] and "STUCK_PUMP" in screens[-1]
        assert any("STUCK_PUMP" in line for line in lines), "the plain progress says it too"
