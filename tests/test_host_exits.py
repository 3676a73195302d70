"""Every way the host can die mid-session, checked from the band's side.

`acudevice run` runs in a subprocess against the simulator on a pseudo-terminal, as a USB band
would be driven; the test then asks the band itself what state it was left in.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from acudevice.device import connect
from acudevice.protocol import FaultCode, FirmwareState
from acudevice.store import Journal
from tests.sim_server import serve

pytestmark = pytest.mark.wire


@dataclass
class Host:
    proc: subprocess.Popen[str]
    seen: list[str]

    def wait_for(self, word: str) -> str:
        """Read progress lines until one mentions `word` (one line as each phase ends)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seen.append(line)
            if word in line:
                return line
        raise AssertionError(f"the host ended before {word!r}: {self.seen}")

    def finish(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@contextmanager
def host_run(home: Path, url: str, preexec: Callable[[], None] | None = None) -> Iterator[Host]:
    def child() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # however pytest itself was launched
        if preexec is not None:
            preexec()

    proc = subprocess.Popen(
        [sys.executable, "-m", "acudevice.cli", "run", "nausea-relief", "--device", url],
        env={**os.environ, "ACUDEVICE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=child,
    )
    try:
        yield Host(proc, [])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def band_state(url: str) -> tuple[FirmwareState, FaultCode, int]:
    async def ask() -> tuple[FirmwareState, FaultCode, int]:
        async with connect(url) as band:
            status = await band.status()
            return status.state, status.fault, status.measured_level

    return asyncio.run(ask())


def assert_told_to_vent(url: str) -> None:
    """Asked at once, before the band's own watchdog (3 s) could have acted for the host."""
    state, fault, level = band_state(url)
    assert state in (FirmwareState.VENTING, FirmwareState.IDLE), (state, fault, level)
    assert fault is not FaultCode.WATCHDOG


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def the_session(home: Path) -> tuple[str, str | None]:
    with Journal(home / "data" / "journal.sqlite3") as journal:
        [record] = journal.sessions()
        return record.outcome, record.detail


@pytest.mark.parametrize(
    ("signum", "code", "detail"),
    [
        (signal.SIGINT, 130, "Ctrl-C"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_a_signal_mid_hold_vents_records_and_exits_with_its_code(
    isolated_home: Path, signum: int, code: int, detail: str
) -> None:
    with serve("--pty", "--speed", "20") as url, host_run(isolated_home, url) as host:
        host.wait_for(" ramp ")  # the ramp ended: mid-hold now
        host.proc.send_signal(signum)
        returncode, err = host.finish()
        assert_told_to_vent(url)
    assert returncode == code, err
    assert "vent" in one_line(err)
    outcome, recorded = the_session(isolated_home)
    assert outcome == "stopped" and recorded is not None and detail in recorded


def test_a_journal_that_fails_mid_session_vents_first_and_says_so(isolated_home: Path) -> None:
    def small_files() -> None:  # the disk fills up: writes past 320 KiB fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (320 * 1024, 320 * 1024))

    with serve("--pty", "--speed", "20") as url, host_run(isolated_home, url, small_files) as host:
        host.wait_for(" ramp ")  # the ramp ended: the band is inflated when the journal fails
        returncode, err = host.finish()
        assert_told_to_vent(url)
    assert returncode == 1, err
    line = one_line(err)
    assert "journal" in line and "vent" in line
    with Journal(isolated_home / "data" / "journal.sqlite3") as journal:
        [record] = journal.sessions()  # begun before the band moved
    assert record.outcome in ("faulted", "interrupted")  # ended if the disk had room left


def test_sigkill_mid_hold_keeps_the_record_up_to_two_seconds_before(isolated_home: Path) -> None:
    with serve("--pty", "--speed", "20") as url, host_run(isolated_home, url) as host:
        hold = host.wait_for(" ramp ")  # the ramp ended and the hold began at this time
        started = re.search(r"\[\s*([\d.]+) s\]", hold)
        assert started is not None
        # Let 3 s of session time pass (0.15 s of wall time at 20x), then kill the host.
        asyncio.run(asyncio.sleep(3.0 / 20))
        host.proc.kill()
        host.finish()
    db = isolated_home / "data" / "journal.sqlite3"
    with Journal(db) as journal:
        [record] = journal.sessions()
        samples = journal.samples(record.id)
        assert journal.integrity_ok()
    assert record.outcome == "interrupted"
    assert samples and samples[-1].t_ms >= (float(started[1]) + 3.0 - 2.0) * 1000, samples[-1]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_journal_that_cannot_record_keeps_the_band_untouched(isolated_home: Path) -> None:
    """Works as root too (where a read-only mode would not stop writes): the disk is full."""
    with Journal():  # ACUDEVICE_HOME is the isolated home
        pass

    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    with serve("--pty", "--speed", "20") as url, host_run(isolated_home, url, no_room) as host:
        returncode, err = host.finish()
        state, fault, level = band_state(url)
    assert returncode == 2, err
    assert "journal.sqlite3" in one_line(err)
    assert state is FirmwareState.IDLE and fault is FaultCode.NONE and level < 500
    with Journal(isolated_home / "data" / "journal.sqlite3") as journal:
        assert journal.sessions() == []
